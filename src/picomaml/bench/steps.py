"""The micro-batch steps that ``picomaml bench pretrain`` times and measures.

Shared by the timing loop (:mod:`picomaml.bench.pretrain`) and the fresh process that
measures peak memory (:mod:`picomaml.bench.memory`), so both run exactly the
same work. A step is forward + backward with the gradients set to ``None`` first (as
``optimizer.zero_grad()`` does), no optimizer step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from picomaml.model.loss import ar_loss
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.maml import episode_loss
from picomaml.pretrain.meta_head import MetaHead
from picomaml.pretrain.smlmt import Episode

ArLossImpl = Literal["chunked", "full"]


class Step:
    """A callable ``step(i)`` plus the parameters whose gradients it sets."""

    def __init__(self, fn: Callable[[int], None], params: Sequence[nn.Parameter]) -> None:
        self.fn, self.params = fn, list(params)

    def __call__(self, i: int) -> None:
        self.fn(i)

    def drop_grads(self) -> None:
        """``zero_grad(set_to_none=True)`` for every parameter of the step."""
        for p in self.params:
            p.grad = None


def full_logits_ar_loss(model: nn.Module, rows: Tensor) -> Tensor:
    """The AR loss as it was before the chunked loss: whole ``[B*L, V]`` logits, float32.

    Kept only so the bench can measure what the chunked loss saves (``--ar-loss full``).
    """
    logits = model(rows[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), rows[:, 1:].reshape(-1))


def autocast_context(
    device: torch.device,
) -> tuple[Callable[[], AbstractContextManager], torch.dtype]:
    """bf16 autocast on CUDA devices that support it (the paper's bf16-mixed), else none."""
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32
    return (lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)), dtype


def make_ar_step(
    model: nn.Module, rows: Tensor, device: torch.device, impl: ArLossImpl = "chunked"
) -> Step:
    """Forward + backward of the AR loss on ``rows[B, L+1]``."""
    loss_fn = ar_loss if impl == "chunked" else full_logits_ar_loss
    autocast, _ = autocast_context(device)
    params = list(model.parameters())

    def step(_: int) -> None:
        for p in params:
            p.grad = None
        with autocast():
            loss = loss_fn(model, rows)
        loss.backward()

    return Step(step, params)


def make_maml_step(
    model: nn.Module,
    head: MetaHead,
    episodes: Sequence[Episode],
    meta: MetaSection,
    device: torch.device,
) -> Step:
    """Forward + backward of the first-order MAML loss on ``episodes[i]`` at call ``i``."""
    autocast, _ = autocast_context(device)
    params = list(model.parameters()) + list(head.parameters())

    def step(i: int) -> None:
        for p in params:
            p.grad = None
        with autocast():
            loss, _ = episode_loss(model, head, episodes[i % len(episodes)], meta)
        loss.backward()

    return Step(step, params)


__all__ = [
    "ArLossImpl",
    "Step",
    "autocast_context",
    "full_logits_ar_loss",
    "make_ar_step",
    "make_maml_step",
]

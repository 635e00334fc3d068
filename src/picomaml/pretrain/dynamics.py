"""Learning dynamics: weight spectra, proportional effective rank, held-out perplexity,
and the activations / weights / gradients files pico-analyze reads.

Pure functions of a model and token rows (no file I/O except :func:`save_states`), so
each one is tested directly. Module names are the backbone's own, e.g.
``layers.3.attention.v_proj``, matching pico-train's learning-dynamics files (its
gradients are keyed by the module name too, ``.weight`` stripped).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from picomaml.fileio import write_with

DEFAULT_MODULES = ("attention.v_proj", "attention.o_proj", "swiglu.w_2")


def singular_values(weight: Tensor) -> Tensor:
    """Singular values of a weight matrix, descending, in float64 (small ones matter for PER)."""
    if weight.dim() != 2:
        raise ValueError(f"expected a matrix, got shape {tuple(weight.shape)}")
    return torch.linalg.svdvals(weight.detach().to(torch.float64).cpu())


def proportional_effective_rank(s: Tensor) -> float:
    """PER = exp(H(p)) / len(s) with p = s / sum(s) and 0 log 0 = 0.

    1.0 when all singular values are equal (identity), 1/len(s) for a rank-1 matrix;
    an all-zero matrix has no spectrum to speak of and gets 0.
    """
    s = s.detach().to(torch.float64).flatten()
    if s.numel() == 0:
        raise ValueError("empty spectrum")
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s / total
    nz = p[p > 0]
    entropy = float(-(nz * nz.log()).sum())
    return math.exp(entropy) / s.numel()


def tracked_modules(
    model: nn.Module, suffixes: tuple[str, ...] | list[str]
) -> dict[str, nn.Linear]:
    """``name -> Linear`` for every module whose name ends with one of ``suffixes``."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and any(name.endswith(sfx) for sfx in suffixes)
    }


def spectra(
    model: nn.Module, suffixes: tuple[str, ...] | list[str] = DEFAULT_MODULES
) -> dict[str, Tensor]:
    """Singular values of every tracked module's weight."""
    return {name: singular_values(m.weight) for name, m in tracked_modules(model, suffixes).items()}


@torch.no_grad()
def perplexity(model: nn.Module, batches: list[Tensor]) -> float:
    """exp(mean next-token NLL over every predicted token of ``batches`` (rows ``[B, L+1]``)).

    Token-weighted, so batches of different sizes count by their tokens.
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    try:
        for rows in batches:
            rows = rows.to(device)
            logits = model(rows[:, :-1])
            nll = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(),
                rows[:, 1:].reshape(-1),
                reduction="sum",
            )
            total += float(nll)
            count += rows[:, 1:].numel()
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("perplexity of an empty set of batches")
    return math.exp(total / count)


def extract_states(
    model: nn.Module, rows: Tensor, suffixes: tuple[str, ...] | list[str] = DEFAULT_MODULES
) -> dict[str, dict[str, Tensor]]:
    """pico-train's learning-dynamics states of ``model`` on ``rows[B, L+1]``.

    Returns ``{"activations", "weights", "gradients"}``, each ``module name -> tensor``:
    the module outputs at the last input position ``[B, out]``, the weight matrices, and
    the gradients of the mean LM loss on ``rows`` with respect to those weights. The
    work is done on a copy, so the caller's parameters and ``.grad`` are untouched.
    """
    clone = copy.deepcopy(model)
    clone.zero_grad(set_to_none=True)
    clone.train()
    modules = tracked_modules(clone, suffixes)
    activations: dict[str, Tensor] = {}

    def hook(name: str):
        def fn(_module: nn.Module, _inputs: object, out: Tensor) -> None:
            activations[name] = out[:, -1, :].detach().float().cpu()

        return fn

    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items()]
    try:
        device = next(clone.parameters()).device
        rows = rows.to(device)
        logits = clone(rows[:, :-1])
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(), rows[:, 1:].reshape(-1)
        )
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    weights = {n: m.weight.detach().float().cpu().clone() for n, m in modules.items()}
    gradients = {n: m.weight.grad.detach().float().cpu().clone() for n, m in modules.items()}
    return {"activations": activations, "weights": weights, "gradients": gradients}


def save_states(folder: str | Path, split: str, states: dict[str, dict[str, Tensor]]) -> None:
    """Write ``{split}_{activations,weights,gradients}.pt`` (pico-train's layout) in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for kind, tensors in states.items():
        write_with(folder / f"{split}_{kind}.pt", lambda tmp, t=tensors: torch.save(t, tmp))


__all__ = [
    "DEFAULT_MODULES",
    "extract_states",
    "perplexity",
    "proportional_effective_rank",
    "save_states",
    "singular_values",
    "spectra",
    "tracked_modules",
]

"""Learning-rate schedule: linear warm-up, then cosine (or linear) decay to ``min_lr``.

The schedule is a pure function of the optimizer step so it can be tested at key steps
and restored exactly on resume (``LambdaLR`` keeps only its step counter).

Convention: the scheduler is stepped once after every optimizer step, so optimizer
step ``s`` (0-based) runs at ``lr * factor(s)``. Warm-up reaches the peak at
``s = warmup_steps - 1`` (no step is wasted at lr 0); decay runs from the peak at
``s = warmup_steps`` to ``min_lr`` at ``s = max_steps`` and stays there.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from picomaml.pretrain.config import TrainingSection


def lr_factor(
    step: int,
    *,
    warmup_steps: int,
    max_steps: int,
    min_ratio: float = 0.0,
    kind: str = "cosine",
) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant" or max_steps <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / (max_steps - warmup_steps))
    if kind == "cosine":
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if kind == "linear":
        return 1.0 - (1.0 - min_ratio) * progress
    raise ValueError(f"unknown schedule {kind!r}; expected cosine, linear or constant")


def schedule_fn(training: TrainingSection) -> Callable[[int], float]:
    """``step -> factor`` for the ``training`` config section."""
    min_ratio = training.min_lr / training.lr

    def factor(step: int) -> float:
        return lr_factor(
            step,
            warmup_steps=training.warmup_steps,
            max_steps=training.max_steps,
            min_ratio=min_ratio,
            kind=training.schedule,
        )

    return factor


def build_scheduler(optimizer: Optimizer, training: TrainingSection) -> LambdaLR:
    """``LambdaLR`` applying :func:`lr_factor` to every parameter group's base lr."""
    return LambdaLR(optimizer, schedule_fn(training))


__all__ = ["build_scheduler", "lr_factor", "schedule_fn"]

"""Measures of a loss curve: how fast fine-tuning converges (no I/O, tested against hand
computation).

Each definition (t90, the normalised loss AUC, the initial slope) is one small function whose
exact meaning the report's methods section can quote; :mod:`picomaml.study.analyses.convergence`
applies them to the cells' training logs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def t90(steps: Sequence[float], losses: Sequence[float]) -> float | None:
    """First logged step at which the loss has moved 90% of the way from its first to
    its final value (``loss <= L0 - 0.9 (L0 - Lf)`` for a falling curve).

    A flat curve gives the first step; a rising one is treated symmetrically. None
    for an empty curve.
    """
    if not steps:
        return None
    first, final = losses[0], losses[-1]
    threshold = first - 0.9 * (first - final)
    for s, loss in zip(steps, losses, strict=True):
        if (final <= first and loss <= threshold) or (final > first and loss >= threshold):
            return float(s)
    return float(steps[-1])


def normalised_auc(steps: Sequence[float], losses: Sequence[float]) -> float | None:
    """Area under the loss curve with steps rescaled to [0, 1] and the loss divided by
    its first value (trapezoid rule). 1.0 = no progress, smaller = faster convergence.

    None with fewer than two points, a zero-length step range or a first loss <= 0.
    """
    if len(steps) < 2 or steps[-1] == steps[0] or losses[0] <= 0:
        return None
    span = steps[-1] - steps[0]
    area = 0.0
    for i in range(1, len(steps)):
        dx = (steps[i] - steps[i - 1]) / span
        area += dx * (losses[i] + losses[i - 1]) / 2 / losses[0]
    return area


def initial_slope(
    steps: Sequence[float], losses: Sequence[float], fraction: float = 0.1
) -> float | None:
    """Least-squares slope of loss vs step over the first ``fraction`` of the logged
    step range (at least the first two points). Negative = falling loss."""
    if len(steps) < 2:
        return None
    cutoff = steps[0] + fraction * (steps[-1] - steps[0])
    n = max(2, sum(1 for s in steps if s <= cutoff))
    xs, ys = list(steps[:n]), list(losses[:n])
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def train_curve(train_log: Iterable[dict]) -> tuple[list[float], list[float]]:
    """(steps, losses) of the ``kind == "train"`` lines of a fine-tuning log, step-sorted."""
    pts = sorted(
        (float(r["step"]), float(r["loss"])) for r in train_log if r.get("kind") == "train"
    )
    return [p[0] for p in pts], [p[1] for p in pts]

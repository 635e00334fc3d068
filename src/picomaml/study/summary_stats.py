"""Summary statistics over seeds and pairs: mean, standard deviation, the 95% Student-t
interval, relative gain and the verdict an interval supports (no I/O, tested against hand
computation)."""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30 (beyond: 1.96).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean; None for no values."""
    return sum(values) / len(values) if values else None


def std(values: Sequence[float]) -> float | None:
    """Sample standard deviation (n-1); None with fewer than two values."""
    if len(values) < 2:
        return None
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def t_interval(values: Sequence[float]) -> tuple[float, float, float] | None:
    """(mean, lo, hi): two-sided 95% Student-t interval of the mean; None if n < 2."""
    n = len(values)
    if n < 2:
        return None
    m = sum(values) / n
    sd = std(values) or 0.0
    t = _T975[n - 2] if n - 1 <= len(_T975) else 1.96
    half = t * sd / math.sqrt(n)
    return m, m - half, m + half


def relative_gain(base: float | None, treat: float | None) -> float | None:
    """(treat - base) / base; None when undefined (base 0 or missing)."""
    if base is None or treat is None or base == 0:
        return None
    return (treat - base) / base


def verdict(lo: float | None, hi: float | None) -> str:
    """Whether an interval on a difference excludes zero."""
    if lo is None or hi is None:
        return "no interval"
    if lo > 0:
        return "MAML better (interval > 0)"
    if hi < 0:
        return "vanilla better (interval < 0)"
    return "not distinguishable from noise"

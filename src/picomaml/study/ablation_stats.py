"""Statistics of the ablation analyses: per-type F1 and recall of pooled predictions, paired
bootstrap intervals of contrasts between them, and the verdict rule. Pure (no I/O).

A *system* is a ``[n_sentences, 3]`` array of per-sentence (TP, predicted, gold) entity
counts; systems compared in one contrast share the sentence axis (the same test sentences,
or rewritten copies of them in the same order), and several cells' predictions are pooled
by adding their arrays. The bootstrap resamples sentences once per resample and scores
every system on the same resample, so what the systems share cancels in the contrast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from picomaml.ner.metrics import GOLD, PRED, TP, bootstrap_indices, entity_counts, prf_from_counts
from picomaml.study.summary_stats import t_interval

#: The three verdicts an ablation can get.
SUPPORTED, NOT_SUPPORTED, CANNOT_TELL = "supported", "not supported", "cannot tell at this scale"
#: Differences inside +-MARGIN (fraction, i.e. 1 pp) count as "no effect" for the verdict.
MARGIN = 0.01
#: PER F1 (fraction) below which a manipulation of names or particles has nothing to act on.
FLOOR = 0.05
#: Fewer gold spans of a type than this in a test set: its per-type scores are not readable.
MIN_SPANS = 5


def type_counts(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], types: Sequence[str]
) -> np.ndarray:
    """Per-sentence (TP, predicted, gold) counts summed over ``types``: ``[n, 3]``."""
    names, counts = entity_counts(gold, pred, "default")
    cols = [names.index(t) for t in types if t in names]
    if not cols:
        return np.zeros((len(gold), 3), dtype=np.int64)
    return counts[:, cols, :].sum(axis=1)


def _scores(total: np.ndarray) -> np.ndarray:
    """[..., 3] counts -> [..., 3] precision, recall, F1."""
    return prf_from_counts(total[..., TP], total[..., PRED], total[..., GOLD])


def f1(system: np.ndarray) -> float:
    """F1 of a system's pooled counts."""
    return float(_scores(system.sum(axis=0))[2])


def recall(system: np.ndarray) -> float:
    """Recall of a system's pooled counts."""
    return float(_scores(system.sum(axis=0))[1])


@dataclass
class Contrast:
    """A contrast ``sum_i w_i F1_i`` with its 95% percentile bootstrap interval."""

    value: float
    lo: float
    hi: float

    def pp(self) -> tuple[float, float, float]:
        """(value, lo, hi) in percentage points."""
        return 100 * self.value, 100 * self.lo, 100 * self.hi

    def text(self) -> str:
        """``+1.2 [-0.4, +2.9]`` (percentage points)."""
        v, lo, hi = self.pp()
        return f"{v:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def contrast(
    systems: Sequence[np.ndarray],
    weights: Sequence[float],
    n_resamples: int,
    seed: int,
    metric: str = "f1",
) -> Contrast:
    """Paired bootstrap of ``sum_i weights[i] * metric(systems[i])`` over sentences.

    ``metric`` is ``f1`` or ``recall``. All systems must have the same number of sentences.
    """
    n = {len(s) for s in systems}
    if len(n) != 1:
        raise ValueError(f"contrast: systems cover different sentence counts {sorted(n)}")
    col = {"f1": 2, "recall": 1}[metric]
    w = np.asarray(weights, dtype=np.float64)
    point = float(sum(wi * _scores(s.sum(axis=0))[col] for wi, s in zip(w, systems, strict=True)))
    stack = np.stack(systems)  # [systems, n, 3]
    values = []
    for idx in bootstrap_indices(stack.shape[1], n_resamples, seed):
        totals = stack[:, idx, :].sum(axis=2)  # [systems, chunk, 3]
        values.append(np.tensordot(w, _scores(totals)[..., col], axes=1))
    dist = np.concatenate(values)
    lo, hi = np.quantile(dist, [0.025, 0.975])
    return Contrast(point, float(lo), float(hi))


def verdict(c: Contrast | None, premise: str | None = None) -> tuple[str, str]:
    """The verdict on a hypothesis whose statistic ``c`` is positive when it holds, and why.

    ``premise``: a reason the data cannot test the hypothesis (then: cannot tell).
    Supported: the interval lies above zero. Not supported: it lies below zero, or inside
    +-1 pp (any effect smaller than that). Otherwise: cannot tell at this scale.
    """
    if premise:
        return CANNOT_TELL, premise
    if c is None:
        return CANNOT_TELL, "no paired cells to compare"
    v, lo, hi = c.pp()
    where = f"{v:+.1f} pp, 95% interval [{lo:+.1f}, {hi:+.1f}]"
    if c.lo > 0:
        return SUPPORTED, f"{where}: above zero"
    if c.hi < 0:
        return NOT_SUPPORTED, f"{where}: below zero, the opposite direction"
    if c.lo >= -MARGIN and c.hi <= MARGIN:
        return NOT_SUPPORTED, f"{where}: inside +-{100 * MARGIN:.0f} pp, no effect of that size"
    return CANNOT_TELL, f"{where}: includes zero and is wider than +-{100 * MARGIN:.0f} pp"


def t_verdict(values: Sequence[float], premise: str | None = None) -> tuple[str, str]:
    """The same rule on a Student-t interval of the mean of ``values`` (fractions), for
    statistics that vary over independent draws rather than sentences."""
    ti = t_interval(list(values))
    if premise or ti is None:
        return CANNOT_TELL, premise or "fewer than two draws"
    return verdict(Contrast(*ti), None)

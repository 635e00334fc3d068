"""Pure computations behind the analyses (no I/O, tested against hand computation).

Kept apart from :mod:`picomaml.study.analyses` so each definition (t90, the
normalised loss AUC, the initial slope, particle matching, intervals) is one
small function whose exact meaning the report's methods section can quote.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from picomaml.ner.metrics import sentence_entities

#: Two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30 (beyond: 1.96).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip

Span = tuple[str, int, int]  # (type, start, end exclusive)


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


def spans(tags: Sequence[str]) -> list[Span]:
    """Entity spans ``(type, start, end_exclusive)`` of one sentence, read exactly as the
    headline score reads them (seqeval's conlleval-compatible mode, via
    :func:`picomaml.ner.metrics.sentence_entities`), so recalls here agree with F1 there."""
    return sorted((t, s, e + 1) for t, s, e in sentence_entities(tags, "default"))


def span_statistics(
    tag_sequences: Iterable[Sequence[str]], types: Sequence[str] = ("PER", "LOC", "ORG")
) -> dict[str, dict[str, float]]:
    """Per entity type: number of spans, number and share of single-word spans."""
    total: Counter[str] = Counter()
    single: Counter[str] = Counter()
    for tags in tag_sequences:
        for etype, s, e in spans(tags):
            total[etype] += 1
            single[etype] += e - s == 1
    return {
        t: {
            "spans": total[t],
            "single": single[t],
            "single_share": single[t] / total[t] if total[t] else 0.0,
        }
        for t in types
    }


def particle_spans(
    tokens: Sequence[str], tags: Sequence[str], particles: Iterable[str], etype: str = "PER"
) -> list[tuple[Span, bool]]:
    """Gold ``etype`` spans, each flagged True when the words directly before it are a
    case particle (case-insensitive, e.g. Tagalog "si Maria"; a particle of several words,
    such as Cebuano "sila ni", must match all of them)."""
    words = [tuple(p.lower().split()) for p in particles]
    lowered = [t.lower() for t in tokens]
    out = []
    for span in spans(tags):
        if span[0] != etype:
            continue
        start = span[1]
        flag = any(
            0 < len(w) <= start and tuple(lowered[start - len(w) : start]) == w for w in words
        )
        out.append((span, flag))
    return out


def span_recall(gold: Iterable[Span], pred: Iterable[Span]) -> float | None:
    """Share of gold spans predicted exactly (type and boundaries); None if no gold."""
    gold = list(gold)
    if not gold:
        return None
    pset = set(pred)
    return sum(1 for g in gold if g in pset) / len(gold)


def split_share(subword_counts: Iterable[int]) -> float | None:
    """Share of words tokenised into two or more subwords."""
    counts = list(subword_counts)
    if not counts:
        return None
    return sum(1 for c in counts if c >= 2) / len(counts)


def oov_rate(target_words: Iterable[str], train_vocab: set[str]) -> float | None:
    """Share of the target's word types (casefolded) never seen in the fine-tuning data."""
    types = {w.casefold() for w in target_words}
    if not types:
        return None
    return sum(1 for w in types if w not in train_vocab) / len(types)


def top_words(
    sentences: Iterable[tuple[Sequence[str], Sequence[str]]], k: int, entity: bool
) -> list[str]:
    """The ``k`` most frequent surface words among entity (gold != O) or non-entity
    occurrences; ties broken alphabetically so the choice is deterministic."""
    counts: Counter[str] = Counter()
    for tokens, gold in sentences:
        for w, g in zip(tokens, gold, strict=True):
            if (g != "O") == entity:
                counts[w] += 1
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def mean_word_confidence(
    sentences: Iterable[tuple[Sequence[str], Sequence[str], Sequence[float]]],
    words: Sequence[str],
    entity: bool,
) -> dict[str, float | None]:
    """Mean p(gold tag) of each word over its entity (or non-entity) occurrences."""
    sums: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    wanted = set(words)
    for tokens, gold, probs in sentences:
        for w, g, p in zip(tokens, gold, probs, strict=True):
            if w in wanted and (g != "O") == entity:
                sums[w] += p
                counts[w] += 1
    return {w: (sums[w] / counts[w] if counts[w] else None) for w in words}


def log_p_deltas(
    p_base: Sequence[float], p_treat: Sequence[float], floor: float = 1e-12
) -> list[float]:
    """Per word ``log p_treat(gold) - log p_base(gold)``; positive = more confident after
    MAML (the paper's surprisal change with the sign flipped). ``floor`` avoids log 0."""
    return [
        math.log(max(t, floor)) - math.log(max(b, floor))
        for b, t in zip(p_base, p_treat, strict=True)
    ]

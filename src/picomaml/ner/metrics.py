"""Entity-level NER scores (seqeval) and sentence-level bootstrap intervals.

Two span-extraction modes, both from seqeval:

* ``"default"``: seqeval's conlleval-compatible mode, the headline number. It is lenient with
  broken IOB2: an ``I-X`` after ``O`` (or after another type) opens a new ``X`` span.
* ``"strict"``: seqeval ``mode="strict", scheme=IOB2``. A span must open with ``B-X``; an
  orphan ``I-X`` run is no entity at all.

An entity counts as correct when type, start and end all match. Micro scores pool the
counts over all types. When a denominator is zero the quantity is 0 (seqeval's behaviour with
``zero_division=0``): no gold and no predicted entities gives precision = recall = F1 = 0.

The bootstrap resamples *sentences* with replacement (the test sets are tiny: one entity moves
F1 by points). Spans never cross sentence boundaries, so the per-sentence counts
``(true positives, predicted, gold)`` are computed once and each resample only sums rows of a
count matrix: 1,000 resamples cost milliseconds instead of 1,000 seqeval calls.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
from seqeval.metrics import sequence_labeling as _seqeval_default
from seqeval.metrics import v1 as _seqeval_v1
from seqeval.scheme import IOB2, Tokens

from picomaml.errors import PicomamlError

Mode = Literal["default", "strict"]
MODES: tuple[Mode, ...] = ("default", "strict")
#: Types that are always reported, even with zero support (UNER v1 evaluates these three).
REPORTED_TYPES: tuple[str, ...] = ("PER", "LOC", "ORG")
#: Rows of the count matrices: true positives, predicted entities, gold entities.
TP, PRED, GOLD = 0, 1, 2
#: Upper bound on int64 cells materialised per bootstrap chunk (keeps memory ~30 MB).
_CHUNK_CELLS = 4_000_000


def _check_inputs(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: str) -> None:
    """Reject what seqeval would silently mis-score: length mismatches and non-IOB2 tags."""
    if mode not in MODES:
        raise PicomamlError(f"metrics: mode must be one of {MODES}, got {mode!r}")
    if len(gold) != len(pred):
        raise PicomamlError(
            f"metrics: {len(gold)} gold sentences but {len(pred)} predicted sentences"
        )
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise PicomamlError(
                f"metrics: sentence {i} has {len(g)} gold tags but {len(p)} predicted tags"
            )
        for which, seq in (("gold", g), ("predicted", p)):
            for j, tag in enumerate(seq):
                if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
                    raise PicomamlError(
                        f"metrics: {which} tag {tag!r} at sentence {i}, word {j} is not 'O', "
                        "'B-<TYPE>' or 'I-<TYPE>' (map other tags to 'O' when reading the data)"
                    )


def sentence_entities(tags: Sequence[str], mode: Mode) -> set[tuple[str, int, int]]:
    """Entity spans ``(type, start, end_inclusive)`` of one sentence, extracted by seqeval."""
    if mode == "default":
        return {(t, s, e) for t, s, e in _seqeval_default.get_entities(list(tags))}
    return {(e.tag, e.start, e.end - 1) for e in Tokens(list(tags), IOB2).entities}


def entity_counts(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: Mode = "default"
) -> tuple[list[str], np.ndarray]:
    """Per-sentence, per-type counts: ``(types, counts[n_sentences, n_types, 3])``.

    The last axis is ``(TP, PRED, GOLD)``. ``types`` lists :data:`REPORTED_TYPES` first, then
    any other type seen, sorted.
    """
    _check_inputs(gold, pred, mode)
    gold_ents = [sentence_entities(g, mode) for g in gold]
    pred_ents = [sentence_entities(p, mode) for p in pred]
    seen = {t for ents in gold_ents + pred_ents for t, _, _ in ents}
    types = list(REPORTED_TYPES) + sorted(seen - set(REPORTED_TYPES))
    index = {t: k for k, t in enumerate(types)}
    counts = np.zeros((len(gold), len(types), 3), dtype=np.int64)
    for i, (g, p) in enumerate(zip(gold_ents, pred_ents, strict=True)):
        for t, _, _ in g & p:
            counts[i, index[t], TP] += 1
        for t, _, _ in p:
            counts[i, index[t], PRED] += 1
        for t, _, _ in g:
            counts[i, index[t], GOLD] += 1
    return types, counts


def prf_from_counts(tp: np.ndarray, n_pred: np.ndarray, n_gold: np.ndarray) -> np.ndarray:
    """Precision, recall, F1 (stacked on a new last axis) with seqeval's zero-division rule."""
    tp, n_pred, n_gold = (np.asarray(a, dtype=np.float64) for a in (tp, n_pred, n_gold))
    precision = np.divide(tp, n_pred, out=np.zeros_like(tp), where=n_pred > 0)
    recall = np.divide(tp, n_gold, out=np.zeros_like(tp), where=n_gold > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return np.stack([precision, recall, f1], axis=-1)


def entity_scores(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], mode: Mode = "default"
) -> dict:
    """Micro and per-type precision/recall/F1 (fractions in [0, 1]) computed by seqeval.

    Returns ``{"micro": {"precision", "recall", "f1", "support"}, "per_type": {TYPE: {...,
    "support"}}}``; ``support`` is the number of gold entities. PER, LOC and ORG are always
    present (zeros when absent from both sides).
    """
    _check_inputs(gold, pred, mode)
    y_true, y_pred = [list(s) for s in gold], [list(s) for s in pred]
    if mode == "default":
        prfs = _seqeval_default.precision_recall_fscore_support
        kwargs: dict = {}
    else:
        prfs = _seqeval_v1.precision_recall_fscore_support
        kwargs = {"scheme": IOB2}
    types = sorted({t for seq in y_true + y_pred for t, _, _ in sentence_entities(seq, mode)})
    per_type = {t: {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0} for t in types}
    for t in REPORTED_TYPES:
        per_type.setdefault(t, {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0})
    if types:
        p, r, f, s = prfs(y_true, y_pred, average=None, zero_division=0, **kwargs)
        for k, t in enumerate(types):  # seqeval orders per-type results by sorted type name
            per_type[t] = {
                "precision": float(p[k]),
                "recall": float(r[k]),
                "f1": float(f[k]),
                "support": int(s[k]),
            }
        p, r, f, s = prfs(y_true, y_pred, average="micro", zero_division=0, **kwargs)
        micro = {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
    else:
        micro = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    ordered = {
        t: per_type[t] for t in list(REPORTED_TYPES) + [t for t in types if t not in REPORTED_TYPES]
    }
    return {"micro": micro, "per_type": ordered}


def bootstrap_indices(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Yield resampled sentence indices in chunks of shape ``[chunk, n]`` (seeded, NumPy PCG64).

    Exposed so tests (and anyone auditing a CI) can replay exactly the resamples used.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        yield rng.integers(0, n, size=(size, n)) if n else np.zeros((size, 0), dtype=np.int64)
        done += size


def _resampled_micro_f1(sentence_counts: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Micro F1 of each resample; ``sentence_counts`` is ``[n_sentences, 3]``."""
    totals = [
        sentence_counts[idx].sum(axis=1)
        for idx in bootstrap_indices(len(sentence_counts), n_resamples, seed)
    ]
    total = np.concatenate(totals) if totals else np.zeros((0, 3), dtype=np.int64)
    return prf_from_counts(total[:, TP], total[:, PRED], total[:, GOLD])[:, 2]


def _ci_key(alpha: float) -> str:
    return f"f1_ci{round(100 * (1 - alpha))}"


def _check_bootstrap_args(n_resamples: int, alpha: float) -> None:
    if n_resamples < 1:
        raise PicomamlError(f"bootstrap: n_resamples must be >= 1, got {n_resamples}")
    if not 0 < alpha < 1:
        raise PicomamlError(f"bootstrap: alpha must be in (0, 1), got {alpha}")


def bootstrap_f1_ci(
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    n_resamples: int = 1000,
    seed: int = 0,
    mode: Mode = "default",
    alpha: float = 0.05,
) -> dict:
    """Percentile bootstrap interval of micro F1 over sentences.

    Returns ``{"n_resamples", "seed", "mode", "f1", "f1_ci95": [lo, hi]}`` (the key is
    ``f1_ci90`` etc. for another ``alpha``). ``f1`` is the point estimate on the full set and
    equals seqeval's micro F1.
    """
    _check_bootstrap_args(n_resamples, alpha)
    _, counts = entity_counts(gold, pred, mode)
    per_sentence = counts.sum(axis=1)
    point = prf_from_counts(*per_sentence.sum(axis=0))[2]
    f1s = _resampled_micro_f1(per_sentence, n_resamples, seed)
    lo, hi = np.quantile(f1s, [alpha / 2, 1 - alpha / 2])
    return {
        "n_resamples": n_resamples,
        "seed": seed,
        "mode": mode,
        "f1": float(point),
        _ci_key(alpha): [float(lo), float(hi)],
    }


def paired_bootstrap(
    gold: Sequence[Sequence[str]],
    pred_a: Sequence[Sequence[str]],
    pred_b: Sequence[Sequence[str]],
    n_resamples: int = 1000,
    seed: int = 0,
    mode: Mode = "default",
    alpha: float = 0.05,
) -> dict:
    """Paired bootstrap of ``F1(b) - F1(a)`` on the same resampled sentences.

    Returns ``{"n_resamples", "seed", "mode", "f1_a", "f1_b", "delta", "delta_ci95": [lo, hi],
    "p_value"}`` where ``p_value`` is the share of resamples with ``delta <= 0``: a one-sided
    p-value-like figure for "b is better than a" (small means b is reliably better).
    """
    _check_bootstrap_args(n_resamples, alpha)
    _, counts_a = entity_counts(gold, pred_a, mode)
    _, counts_b = entity_counts(gold, pred_b, mode)
    sa, sb = counts_a.sum(axis=1), counts_b.sum(axis=1)
    f1_a = prf_from_counts(*sa.sum(axis=0))[2]
    f1_b = prf_from_counts(*sb.sum(axis=0))[2]
    deltas = []
    for idx in bootstrap_indices(len(sa), n_resamples, seed):
        ta, tb = sa[idx].sum(axis=1), sb[idx].sum(axis=1)
        fa = prf_from_counts(ta[:, TP], ta[:, PRED], ta[:, GOLD])[:, 2]
        fb = prf_from_counts(tb[:, TP], tb[:, PRED], tb[:, GOLD])[:, 2]
        deltas.append(fb - fa)
    delta = np.concatenate(deltas)
    lo, hi = np.quantile(delta, [alpha / 2, 1 - alpha / 2])
    return {
        "n_resamples": n_resamples,
        "seed": seed,
        "mode": mode,
        "f1_a": float(f1_a),
        "f1_b": float(f1_b),
        "delta": float(f1_b - f1_a),
        f"delta_ci{round(100 * (1 - alpha))}": [float(lo), float(hi)],
        "p_value": float(np.mean(delta <= 0)),
    }

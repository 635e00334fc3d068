"""Word and span statistics of test sets and predictions: entity spans read as the headline
score reads them, span statistics and recall, particle spans, subword split share, OOV rate,
frequent words and the model's confidence (no I/O, tested against hand computation)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from picomaml.ner.metrics import sentence_entities

Span = tuple[str, int, int]  # (type, start, end exclusive)


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

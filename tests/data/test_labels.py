"""IOB2 span helpers against hand-worked conlleval readings."""

from __future__ import annotations

import itertools

from picomaml.data.labels import (
    LABEL2ID,
    LABELS,
    extract_spans,
    normalize_tags,
    spans_to_tags,
)


def test_label_ids() -> None:
    assert LABELS[0] == "O"
    assert [LABEL2ID[t] for t in LABELS] == list(range(7))


def test_spans_hand_cases() -> None:
    assert extract_spans(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]
    # stray I- starts a span; a type change ends one; B- right after B- splits
    assert extract_spans(["I-ORG", "I-ORG", "I-PER", "B-PER", "B-PER"]) == [
        ("ORG", 0, 2),
        ("PER", 2, 3),
        ("PER", 3, 4),
        ("PER", 4, 5),
    ]
    assert extract_spans(["O", "I-LOC"]) == [("LOC", 1, 2)]
    assert extract_spans(["B-OTH", "I-OTH", "I-PER"]) == [("PER", 2, 3)]
    assert extract_spans([]) == []


def test_normalize_keeps_spans_and_roundtrips() -> None:
    """Over every short tag sequence: normalising never changes the spans, and the
    normalised tags are exactly what spans_to_tags writes back."""
    alphabet = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-OTH", "I-OTH"]
    for n in range(5):
        for tags in itertools.product(alphabet, repeat=n):
            fixed, mapped, repaired = normalize_tags(tags)
            spans = extract_spans(tags)
            assert extract_spans(fixed) == spans
            assert fixed == spans_to_tags(spans, n)
            assert mapped == sum(t.endswith("OTH") for t in tags)
            assert repaired == sum(f.startswith("B-") for f in fixed) - sum(
                t.startswith("B-") and not t.endswith("OTH") for t in tags
            )

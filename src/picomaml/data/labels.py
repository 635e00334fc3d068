"""The UNER v1 label set and IOB2 span helpers.

UNER v1 evaluates PER, LOC and ORG only, so the label set is fixed here and every
module (reader, CRF head, metrics) uses the same ids. Spans follow conlleval's
convention, which is also what seqeval's default mode does: a chunk starts at ``B-X``
or at an ``I-X`` that does not continue an ``X`` chunk, and ends before ``O``, ``B-*``
or a tag of another type.
"""

from __future__ import annotations

from collections.abc import Sequence

ENTITY_TYPES: tuple[str, ...] = ("PER", "LOC", "ORG")
LABELS: list[str] = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))

Span = tuple[str, int, int]
"""``(entity_type, start, end_exclusive)`` over word positions."""


def split_tag(tag: str) -> tuple[str, str | None]:
    """``"B-PER" -> ("B", "PER")``, ``"O" -> ("O", None)``; anything else keeps its prefix."""
    if tag == "O":
        return "O", None
    prefix, sep, etype = tag.partition("-")
    if not sep:
        return tag, None
    return prefix, etype


def extract_spans(tags: Sequence[str]) -> list[Span]:
    """Entity spans of an IOB2 tag sequence, with conlleval's convention for stray ``I-X``.

    Tags of types outside :data:`ENTITY_TYPES` are treated as ``O`` so stray annotations
    never produce spans the evaluation does not know about.
    """
    spans: list[Span] = []
    cur_type: str | None = None
    cur_start = 0
    for i, tag in enumerate(tags):
        prefix, etype = split_tag(tag)
        if etype not in ENTITY_TYPES or prefix not in ("B", "I"):
            prefix, etype = "O", None
        continues = prefix == "I" and etype == cur_type
        if cur_type is not None and not continues:
            spans.append((cur_type, cur_start, i))
            cur_type = None
        if etype is not None and not continues:
            cur_type, cur_start = etype, i
    if cur_type is not None:
        spans.append((cur_type, cur_start, len(tags)))
    return spans


def spans_to_tags(spans: Sequence[Span], length: int) -> list[str]:
    """IOB2 tags of ``length`` words with the given (non-overlapping) spans."""
    tags = ["O"] * length
    for etype, start, end in spans:
        if not (0 <= start < end <= length):
            raise ValueError(f"span {(etype, start, end)} outside a sentence of {length} words")
        tags[start] = f"B-{etype}"
        for k in range(start + 1, end):
            tags[k] = f"I-{etype}"
    return tags


def normalize_tags(tags: Sequence[str]) -> tuple[list[str], int, int]:
    """Map tags onto :data:`LABELS`: ``(new_tags, n_mapped_to_o, n_repaired)``.

    Tags of other types (``B-OTH``, stray ``B-O``, ...) become ``O`` (``n_mapped_to_o``);
    an ``I-X`` that does not continue an ``X`` span becomes ``B-X`` (``n_repaired``), which
    is how conlleval reads it, so the spans are unchanged by the repair.
    """
    out: list[str] = []
    mapped = repaired = 0
    prev_type: str | None = None
    for tag in tags:
        prefix, etype = split_tag(tag)
        if tag != "O" and (etype not in ENTITY_TYPES or prefix not in ("B", "I")):
            mapped += 1
            prefix, etype = "O", None
        if prefix == "I" and etype != prev_type:
            repaired += 1
            prefix = "B"
        out.append("O" if etype is None else f"{prefix}-{etype}")
        prev_type = etype
    return out, mapped, repaired

"""Evaluation-side rewrites of annotated sentences: particle masking and name substitution.

Pure functions (no I/O, no global state): each maps a :class:`Sentence` to a new one and
keeps tokens and gold tags aligned one to one, so a rewritten test set is scored exactly
like the original. :mod:`picomaml.study.derived` applies them to whole target sets and
writes the copies under a results dir; the UNER files are only ever read.

* :func:`mask_particles`: drop the personal case particle before an entity span, or
  replace it with one fixed token (``ablations.particles``, paper Section 4.2).
* :func:`substitute_names`: replace every PER span by a name drawn from a pool
  (``ablations.names``): one given name for a one-word span, ``n - 1`` given names and a
  surname for an ``n``-word span, tagged ``B-PER I-PER ...``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from picomaml.data.labels import ENTITY_TYPES, extract_spans
from picomaml.data.uner import Sentence
from picomaml.errors import PicomamlError

PARTICLE_MODES: tuple[str, ...] = ("drop", "replace")


@dataclass
class MaskStats:
    """What :func:`mask_particles` changed: particles masked (by particle and by the type of
    the span they preceded) and entity spans seen."""

    masked: Counter[str] = field(default_factory=Counter)
    by_type: Counter[str] = field(default_factory=Counter)
    spans: Counter[str] = field(default_factory=Counter)

    def add(self, other: MaskStats) -> None:
        """Accumulate ``other`` into this one (a whole data set's totals)."""
        self.masked.update(other.masked)
        self.by_type.update(other.by_type)
        self.spans.update(other.spans)

    def to_dict(self) -> dict[str, dict[str, int]]:
        """Plain counts for a manifest."""
        return {
            "masked": dict(sorted(self.masked.items())),
            "masked_before_type": dict(sorted(self.by_type.items())),
            "spans": dict(sorted(self.spans.items())),
        }


def _rebuilt(sentence: Sentence, tokens: list[str], tags: list[str]) -> Sentence:
    if len(tokens) != len(tags):
        raise AssertionError(f"{sentence.sent_id}: {len(tokens)} tokens but {len(tags)} tags")
    return Sentence(tokens, tags, sentence.sent_id, " ".join(tokens))


def mask_particles(
    sentence: Sentence,
    particles: Sequence[str],
    mode: str,
    replacement: str = "ang",
    types: Sequence[str] = ENTITY_TYPES,
) -> tuple[Sentence, MaskStats]:
    """Drop (``mode="drop"``) or replace (``mode="replace"``) each particle that directly
    precedes an entity span of one of ``types``.

    A particle is one or more words (``"sila ni"``), matched case-insensitively; the longest
    match wins, and only words tagged ``O`` count (a word inside a span is never masked).
    ``replace`` puts the single word ``replacement`` (tag ``O``) where the particle's words
    were. Everything else, including the tags of every kept word, is copied unchanged.
    """
    if mode not in PARTICLE_MODES:
        raise PicomamlError(f"particles mode: expected one of {list(PARTICLE_MODES)}, got {mode!r}")
    if mode == "replace" and (not replacement or len(replacement.split()) != 1):
        raise PicomamlError(f"particles replacement: expected one word, got {replacement!r}")
    words = sorted({tuple(p.lower().split()) for p in particles if p.split()}, key=len)[::-1]
    lowered = [t.lower() for t in sentence.tokens]
    stats = MaskStats()
    masked: dict[int, int] = {}  # first index of a masked particle -> its length
    for etype, start, _ in extract_spans(sentence.tags):
        stats.spans[etype] += 1
        if etype not in types:
            continue
        for w in words:
            begin = start - len(w)
            if (
                begin >= 0
                and tuple(lowered[begin:start]) == w
                and all(t == "O" for t in sentence.tags[begin:start])
            ):
                masked[begin] = len(w)
                stats.masked[" ".join(w)] += 1
                stats.by_type[etype] += 1
                break
    if not masked:
        return _rebuilt(sentence, list(sentence.tokens), list(sentence.tags)), stats
    tokens: list[str] = []
    tags: list[str] = []
    i = 0
    while i < len(sentence.tokens):
        if i in masked:
            if mode == "replace":
                tokens.append(replacement)
                tags.append("O")
            i += masked[i]
            continue
        tokens.append(sentence.tokens[i])
        tags.append(sentence.tags[i])
        i += 1
    return _rebuilt(sentence, tokens, tags), stats


@dataclass(frozen=True)
class NamePool:
    """Names to substitute: given names and surnames, each one or more words."""

    name: str
    given: tuple[str, ...]
    surnames: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.given or not self.surnames:
            raise PicomamlError(
                f"name pool {self.name}: expected at least one given name and one surname, got "
                f"{len(self.given)} given name(s) and {len(self.surnames)} surname(s)"
            )


def substitute_names(
    sentence: Sentence, pool: NamePool, rng: random.Random
) -> tuple[Sentence, int]:
    """Replace every PER span by a name from ``pool`` (draws from ``rng``, in span order);
    returns the new sentence and the number of spans replaced.

    A one-word span gets a given name; an ``n``-word span ``n - 1`` given names and a
    surname. The replacement is tagged ``B-PER`` then ``I-PER``; a pool entry of several
    words (``de la Cruz``) adds words, and the other words and tags keep their order.
    """
    spans = [s for s in extract_spans(sentence.tags) if s[0] == "PER"]
    if not spans:
        return _rebuilt(sentence, list(sentence.tokens), list(sentence.tags)), 0
    tokens: list[str] = []
    tags: list[str] = []
    pos = 0
    for _, start, end in spans:
        tokens.extend(sentence.tokens[pos:start])
        tags.extend(sentence.tags[pos:start])
        parts = [pool.given[rng.randrange(len(pool.given))] for _ in range(max(1, end - start - 1))]
        if end - start >= 2:
            parts.append(pool.surnames[rng.randrange(len(pool.surnames))])
        name = [w for part in parts for w in part.split()]
        tokens.extend(name)
        tags.extend(["B-PER"] + ["I-PER"] * (len(name) - 1))
        pos = end
    tokens.extend(sentence.tokens[pos:])
    tags.extend(sentence.tags[pos:])
    return _rebuilt(sentence, tokens, tags), len(spans)

"""Training-side resampling: balanced entity types and few-shot target draws.

Pure functions over tag sequences and indices (no I/O). Every random choice comes from a
:class:`random.Random` seeded with a string, which Python hashes with SHA-512, so the same
seed gives the same draw on every machine and Python version (``PYTHONHASHSEED`` plays no
part).

* :func:`balanced_resample` (``finetune.sampling: balanced``): resample the entity-bearing
  training sentences so that PER, LOC and ORG span counts are as equal as the data allows,
  keeping the number of sentences, hence of optimiser updates, of the natural data.
* :func:`split_halves`, :func:`fewshot_pool`, :func:`draw_fewshot`: a fixed evaluation
  half of a target set and seeded draws of ``k`` sentences from the other half
  (``ablations.fewshot``).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from picomaml.data.labels import ENTITY_TYPES, extract_spans
from picomaml.errors import PicomamlError

SAMPLING_MODES: tuple[str, ...] = ("natural", "balanced")


def span_counts(tag_seqs: Sequence[Sequence[str]], indices: Sequence[int]) -> dict[str, int]:
    """Entity spans per type (and sentences) over the sentences ``indices`` (repeats count)."""
    counts: Counter[str] = Counter()
    for i in indices:
        for etype, _, _ in extract_spans(tag_seqs[i]):
            counts[etype] += 1
    return {"sentences": len(indices), **{t: counts[t] for t in ENTITY_TYPES}}


@dataclass
class Balanced:
    """A balanced resample: the chosen sentence ``indices`` (with repeats, in draw order)
    and the span counts before and after."""

    indices: list[int]
    before: dict[str, int]
    after: dict[str, int]
    seed: int

    def to_dict(self) -> dict[str, object]:
        """The record written beside a fine-tuning run (``sampling.json``)."""
        distinct = len(set(self.indices))
        return {
            "sampling": "balanced",
            "seed": self.seed,
            "method": (
                "sentences without entities kept once each; as many entity-bearing sentences "
                "as the natural data has, drawn with replacement one at a time: each draw "
                "picks the type with the fewest spans so far (PER, LOC, ORG on ties) and a "
                "uniformly random sentence holding that type"
            ),
            "before": self.before,
            "after": self.after,
            "distinct_sentences": distinct,
            "repeated_draws": len(self.indices) - distinct,
        }


def balanced_resample(tag_seqs: Sequence[Sequence[str]], seed: int) -> Balanced:
    """Resample ``tag_seqs`` (by index) so the PER/LOC/ORG span counts come out as equal as
    the data allows, with the same number of sentences.

    Sentences without entities are kept once each, so the share of entity-free sentences
    is the natural one; the entity-bearing ones are replaced by as many greedy draws (see
    :meth:`Balanced.to_dict`). A type absent from the data cannot be balanced and is left
    out. Same ``tag_seqs`` and ``seed``, same indices.
    """
    rng = random.Random(f"balanced|{seed}")
    spans = [Counter(t for t, _, _ in extract_spans(tags)) for tags in tag_seqs]
    empty = [i for i, c in enumerate(spans) if not c]
    holders = {t: [i for i, c in enumerate(spans) if c[t]] for t in ENTITY_TYPES}
    present = [t for t in ENTITY_TYPES if holders[t]]
    n_entity = len(tag_seqs) - len(empty)
    drawn: list[int] = []
    totals: Counter[str] = Counter()
    for _ in range(n_entity):
        etype = min(present, key=lambda t: (totals[t], ENTITY_TYPES.index(t)))
        pick = holders[etype][rng.randrange(len(holders[etype]))]
        drawn.append(pick)
        totals.update(spans[pick])
    indices = sorted(empty + drawn)
    return Balanced(
        indices,
        span_counts(tag_seqs, range(len(tag_seqs))),  # type: ignore[arg-type]
        span_counts(tag_seqs, indices),
        seed,
    )


def split_halves(n: int, seed: int) -> tuple[list[int], list[int]]:
    """A fixed random split of ``n`` sentences: (evaluation half, the other half), each
    sorted; the evaluation half gets the odd one out (``ceil(n / 2)``)."""
    order = list(range(n))
    random.Random(f"halves|{seed}").shuffle(order)
    cut = n - n // 2
    return sorted(order[:cut]), sorted(order[cut:])


def fewshot_pool(
    tokens: Sequence[Sequence[str]], eval_idx: Sequence[int], other_idx: Sequence[int]
) -> tuple[list[int], list[int]]:
    """The sentences of the other half that may be drawn: those whose words are not also
    the words of an evaluation sentence (a repeated sentence would put an evaluation
    sentence into training). Returns (pool, excluded)."""
    held = {tuple(tokens[i]) for i in eval_idx}
    pool = [i for i in other_idx if tuple(tokens[i]) not in held]
    excluded = [i for i in other_idx if tuple(tokens[i]) in held]
    return pool, excluded


def draw_fewshot(pool: Sequence[int], k: int, draw: int, seed: int, target: str) -> list[int]:
    """Draw ``k`` sentences of ``pool`` (sorted indices) for draw number ``draw``.

    The draws of one ``(seed, target, draw)`` are nested: the first ``k`` of one shuffled
    order, so a larger ``k`` adds sentences to a smaller one's (the curve over ``k`` then
    varies only in ``k``, not in which sentences happened to be drawn). ``k`` larger than
    the pool is an error: callers cap it first and say so.
    """
    if k < 0:
        raise PicomamlError(f"few-shot k: expected an integer >= 0, got {k}")
    if k > len(pool):
        raise PicomamlError(f"few-shot k: {k} is larger than the pool of {len(pool)} sentences")
    order = list(pool)
    random.Random(f"fewshot|{seed}|{target}|{draw}").shuffle(order)
    return sorted(order[:k])

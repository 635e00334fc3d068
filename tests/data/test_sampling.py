"""Balanced resampling and few-shot draws: counts, disjointness, determinism."""

from __future__ import annotations

import pytest

from picomaml.data.sampling import (
    balanced_resample,
    draw_fewshot,
    fewshot_pool,
    span_counts,
    split_halves,
)
from picomaml.errors import PicomamlError

PER, LOC, ORG, NONE = ["B-PER", "O"], ["B-LOC", "O"], ["B-ORG", "O"], ["O", "O"]


def skewed() -> list[list[str]]:
    """40 PER sentences, 5 LOC, 2 ORG, 1 PER+LOC, 30 without entities (about 20:3:1)."""
    return [PER] * 40 + [LOC] * 5 + [ORG] * 2 + [["B-PER", "B-LOC"]] + [NONE] * 30


def test_balanced_counts_come_out_equal_with_the_same_number_of_sentences():
    tags = skewed()
    result = balanced_resample(tags, seed=0)
    assert result.before == {"sentences": 78, "PER": 41, "LOC": 6, "ORG": 2}
    assert len(result.indices) == len(tags)  # same sentences, so the same updates per epoch
    assert result.after == span_counts(tags, result.indices)
    after = [result.after[t] for t in ("PER", "LOC", "ORG")]
    assert max(after) - min(after) <= 2  # 48 draws spread over three types
    assert sum(1 for i in result.indices if tags[i] == NONE) == 30  # entity-free kept once
    record = result.to_dict()
    assert record["sampling"] == "balanced" and record["seed"] == 0
    assert record["repeated_draws"] == len(tags) - record["distinct_sentences"]


def test_balanced_is_seeded_and_handles_a_missing_type():
    tags = skewed()
    assert balanced_resample(tags, 3).indices == balanced_resample(tags, 3).indices
    assert balanced_resample(tags, 3).indices != balanced_resample(tags, 4).indices
    no_org = [PER] * 10 + [LOC] * 2
    result = balanced_resample(no_org, 0)
    assert result.after["ORG"] == 0 and result.after["PER"] == result.after["LOC"] == 6


def test_halves_are_disjoint_covering_and_fixed():
    ev, other = split_halves(95, seed=0)
    assert len(ev) == 48 and len(other) == 47
    assert sorted(ev + other) == list(range(95)) and not set(ev) & set(other)
    assert split_halves(95, 0) == (ev, other)
    assert split_halves(95, 1) != (ev, other)


def test_pool_drops_repeats_of_evaluation_sentences():
    tokens = [["a"], ["b"], ["a"], ["c"]]
    pool, excluded = fewshot_pool(tokens, eval_idx=[0], other_idx=[1, 2, 3])
    assert pool == [1, 3] and excluded == [2]


def test_draws_are_nested_deterministic_and_inside_the_pool():
    pool = list(range(50, 90))
    draws = {k: draw_fewshot(pool, k, draw=2, seed=0, target="tl_trg") for k in (5, 10, 25)}
    assert set(draws[5]) <= set(draws[10]) <= set(draws[25]) <= set(pool)
    assert [len(v) for v in draws.values()] == [5, 10, 25]
    assert draw_fewshot(pool, 10, 2, 0, "tl_trg") == draws[10]
    assert draw_fewshot(pool, 10, 3, 0, "tl_trg") != draws[10]
    assert draw_fewshot(pool, 10, 2, 0, "ceb_gja") != draws[10]
    assert draw_fewshot(pool, 0, 0, 0, "tl_trg") == []


def test_k_larger_than_the_pool_is_an_error():
    with pytest.raises(PicomamlError, match="few-shot k: 41 is larger than the pool of 40"):
        draw_fewshot(list(range(40)), 41, 0, 0, "tl_trg")
    with pytest.raises(PicomamlError, match="few-shot k"):
        draw_fewshot([1, 2], -1, 0, 0, "tl_trg")

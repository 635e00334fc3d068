"""The head-cache benchmark times two variants that must do the same work: the same head
updates on the same batches, only the features' origin differs. So the test checks that the
two trained heads agree (a cache that served another sentence's features, or batches in
another order, would not), and that the report is made of the two timings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from picomaml.bench.head_cache import bench_head_cache, prepare, train_head
from picomaml.bench.ner import NerBenchSettings, head_cache_entry
from picomaml.errors import PicomamlError
from picomaml.ner.head import build_tagger


def test_cached_and_recomputed_features_train_the_same_head(fixture_data_root: Path) -> None:
    setup = prepare(fixture_data_root, 8, "sk_snk", "tiny", 64, 4, seed=0)
    assert len(setup.batches) == 2 and sorted(i for b, _ in setup.batches for i in b) == list(
        range(8)
    )
    heads = {}
    for name, feats_for in setup.variants().items():
        _, heads[name] = train_head(setup, feats_for, epochs=1, seed=0)
    cached, recomputed = heads["cached"].state_dict(), heads["recompute"].state_dict()
    torch.manual_seed(0)
    start = build_tagger(96, constraints=False).state_dict()
    # Training moved the head (so agreeing is not trivially agreeing on the start) ...
    assert any(not torch.equal(cached[k], v) for k, v in start.items())
    # ... and both variants moved it the same way.
    for key, value in cached.items():
        torch.testing.assert_close(recomputed[key], value, rtol=1e-5, atol=1e-6)


def test_a_stale_cache_is_caught(fixture_data_root: Path) -> None:
    """The comparison above can fail: a cache of another backbone's features (a cache kept
    across a change of weights) trains another head."""
    setup = prepare(fixture_data_root, 8, "sk_snk", "tiny", 64, 4, seed=0)
    other = prepare(fixture_data_root, 8, "sk_snk", "tiny", 64, 4, seed=1)
    _, good = train_head(setup, setup.variants()["cached"], epochs=1, seed=0)
    _, stale = train_head(setup, lambda idx: [other.cache[i] for i in idx], epochs=1, seed=0)
    assert any(not torch.allclose(stale.state_dict()[k], v) for k, v in good.state_dict().items())


def test_the_report_is_made_of_the_two_timings(fixture_data_root: Path) -> None:
    out = bench_head_cache(fixture_data_root, n_sentences=8, epochs=1)
    assert out["n_sentences"] == 8 and out["source"] == "sk_snk" and out["size"] == "tiny"
    assert out["epochs_timed"] == 1 and out["batch_size"] == 32
    assert out["epoch_s_cached"] > 0 and out["epoch_s_recompute"] > 0
    assert out["speedup"] == out["epoch_s_recompute"] / out["epoch_s_cached"]


def test_bench_ner_without_a_data_root_is_the_missing_data_line() -> None:
    with pytest.raises(PicomamlError, match=r"not found \(no data root; tried"):
        head_cache_entry(NerBenchSettings(quick=True, iters=1, data_root=None))

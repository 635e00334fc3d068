"""The head-cache benchmark runs and reports both variants (figures are not asserted)."""

from __future__ import annotations

from pathlib import Path

from picomaml.ner.bench_cache import bench_head_cache


def test_bench_head_cache_small(fixture_data_root: Path) -> None:
    out = bench_head_cache(n_sentences=8, epochs=1, data_dir=fixture_data_root)
    assert out["n_sentences"] == 8 and out["source"] == "sk_snk" and out["size"] == "tiny"
    assert out["epoch_s_cached"] > 0 and out["epoch_s_recompute"] > 0
    assert out["speedup"] == out["epoch_s_recompute"] / out["epoch_s_cached"]

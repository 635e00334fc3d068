"""The head-cache benchmark runs and reports both variants (figures are not asserted)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from picomaml.errors import PicomamlError
from picomaml.ner.bench_cache import bench_head_cache, head_cache_from_args


def test_bench_head_cache_small(fixture_data_root: Path) -> None:
    out = bench_head_cache(fixture_data_root, n_sentences=8, epochs=1)
    assert out["n_sentences"] == 8 and out["source"] == "sk_snk" and out["size"] == "tiny"
    assert out["epoch_s_cached"] > 0 and out["epoch_s_recompute"] > 0
    assert out["speedup"] == out["epoch_s_recompute"] / out["epoch_s_cached"]


def test_bench_ner_without_a_data_root_is_the_missing_data_line() -> None:
    args = argparse.Namespace(quick=True, iters=1, data_root=None)
    with pytest.raises(PicomamlError, match=r"not found \(no data root; tried"):
        head_cache_from_args(args)

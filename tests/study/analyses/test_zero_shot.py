"""Analyses 1-3 on hand-made cells: every row worked out by hand (F1 in percent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from picomaml.study.analyses.zero_shot import analysis_regime, analysis_scale, analysis_sources
from tests.study.analyses.handmade import cell, context, study

# Zero-shot F1 = mean over the three targets. Pairs (vanilla, MAML):
#   tiny head sk_snk  .3 / .4     tiny full sk_snk .5 / .6     small head sk_snk .1 / .1
#   tiny head da_ddt: tl_trg only (.7 / .8): no zero-shot F1, only in the per-set table.
# A MAML cell without a vanilla partner is ignored everywhere.
CELLS = [
    cell("vanilla", f1=(0.2, 0.3, 0.4)),
    cell("maml", f1=(0.3, 0.4, 0.5)),
    cell("vanilla", regime="full", f1=0.5),
    cell("maml", regime="full", f1=0.6),
    cell("vanilla", "small", f1=0.1),
    cell("maml", "small", f1=0.1),
    cell("maml", "small", source="da_ddt", f1=0.9),
    cell("vanilla", source="da_ddt", f1={"tl_trg": 0.7}),
    cell("maml", source="da_ddt", f1={"tl_trg": 0.8}),
]


def test_scale_per_size_and_per_test_set(tmp_path: Path) -> None:
    a = analysis_scale(study(tmp_path, CELLS), context(tmp_path))
    assert a.unavailable is None
    per_size, per_set = a.tables
    assert per_size.rows == [
        pytest.approx({"size": "tiny", "parameters": None, "pairs": 2, "vanilla F1": 40.0,
                       "MAML F1": 50.0, "delta (pp)": 10.0, "relative gain (%)": 25.0}),
        pytest.approx({"size": "small", "parameters": None, "pairs": 1, "vanilla F1": 10.0,
                       "MAML F1": 10.0, "delta (pp)": 0.0, "relative gain (%)": 0.0}),
    ]  # fmt: skip
    assert per_size.files[1] == [
        "cells/vanilla-small-head-sk_snk-s0/results.json",
        "cells/maml-small-head-sk_snk-s0/results.json",
    ]
    # Every pair of any size that scored the set, the da_ddt pair included on tl_trg.
    assert per_set.rows == [
        pytest.approx({"dataset": "tl_trg", "pairs": 4, "vanilla F1": 37.5, "MAML F1": 45.0,
                       "delta (pp)": 7.5}),
        pytest.approx({"dataset": "tl_ugnayan", "pairs": 3, "vanilla F1": 30.0,
                       "MAML F1": 110 / 3, "delta (pp)": 20 / 3}),
        pytest.approx({"dataset": "ceb_gja", "pairs": 3, "vanilla F1": 100 / 3, "MAML F1": 40.0,
                       "delta (pp)": 20 / 3}),
    ]  # fmt: skip
    assert (tmp_path / "figures" / "1_scale.png").is_file()


def test_regime_rows_per_regime_then_size(tmp_path: Path) -> None:
    a = analysis_regime(study(tmp_path, CELLS), context(tmp_path))
    assert a.tables[0].rows == [
        pytest.approx({"regime": "head", "size": "tiny", "pairs": 1, "vanilla F1": 30.0,
                       "MAML F1": 40.0, "delta (pp)": 10.0}),
        pytest.approx({"regime": "head", "size": "small", "pairs": 1, "vanilla F1": 10.0,
                       "MAML F1": 10.0, "delta (pp)": 0.0}),
        pytest.approx({"regime": "full", "size": "tiny", "pairs": 1, "vanilla F1": 50.0,
                       "MAML F1": 60.0, "delta (pp)": 10.0}),
    ]  # fmt: skip


def test_sources_with_a_delta_per_size(tmp_path: Path) -> None:
    a = analysis_sources(study(tmp_path, CELLS), context(tmp_path))
    # sk_snk: vanilla (.3 + .5 + .1) / 3, MAML (.4 + .6 + .1) / 3; gain (11/30 - 9/30) / (9/30).
    assert a.tables[0].rows == [
        pytest.approx({"source": "sk_snk", "pairs": 3, "vanilla F1": 30.0, "MAML F1": 110 / 3,
                       "delta (pp)": 20 / 3, "relative gain (%)": 200 / 9,
                       "delta tiny": 10.0, "delta small": 0.0}),
    ]  # fmt: skip


def test_without_pairs_each_says_which_variants_it_saw(tmp_path: Path) -> None:
    only_maml = study(tmp_path, [cell("maml", f1=0.5)])
    for fn in (analysis_scale, analysis_regime, analysis_sources):
        a = fn(only_maml, context(tmp_path))
        assert a.tables == [] and "(variants present: ['maml'])" in a.unavailable

"""Analyses 8-9 on hand-made sentences: span counts, particles before PER spans, recall on
them, subword splits and OOV rates, all counted by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from picomaml.study.analyses.language import analysis_particles, analysis_span_stats
from picomaml.study.analyses.tables import DataAccess
from tests.study.analyses.handmade import cell, context, sentence, study

# Raw data as DataAccess serves it: (tokens, tags).
RAW = {
    (code, split): [(words.split(" "), tags.split(" "))]
    for code, split, words, tags in (
        ("sk_snk", "train", "Juan Cruz went to Manila", "B-PER I-PER O O B-LOC"),
        ("tl_trg", "test", "si Juan at si Ana", "O B-PER O O B-PER"),
        ("tl_ugnayan", "test", "went", "O"),
        ("ceb_gja", "test", "ni Pedro sa UP", "O B-PER O B-ORG"),
    )
}


def _access(with_subwords: bool = True) -> DataAccess:
    return DataAccess(
        sentences=lambda code, split: RAW.get((code, split), []),
        subword_counts=(lambda words: [1 if len(w) <= 3 else 2 for w in words])
        if with_subwords
        else None,
    )


def test_span_statistics_per_dataset_and_type(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.data = _access()
    a = analysis_span_stats(study(tmp_path, [cell("vanilla", f1=0.5)]), ctx)
    rows = {(r["dataset"], r["type"]): (r["spans"], r["single-word (%)"]) for r in a.tables[0].rows}
    assert rows == {
        ("sk_snk train", "PER"): (1, 0.0), ("sk_snk train", "LOC"): (1, 100.0),
        ("sk_snk train", "ORG"): (0, None),
        ("tl_trg test", "PER"): (2, 100.0), ("tl_trg test", "LOC"): (0, None),
        ("tl_trg test", "ORG"): (0, None),
        ("tl_ugnayan test", "PER"): (0, None), ("tl_ugnayan test", "LOC"): (0, None),
        ("tl_ugnayan test", "ORG"): (0, None),
        ("ceb_gja test", "PER"): (1, 100.0), ("ceb_gja test", "LOC"): (0, None),
        ("ceb_gja test", "ORG"): (1, 100.0),
    }  # fmt: skip
    assert [r["dataset"] for r in a.tables[0].rows][::3] == [
        "sk_snk train", "tl_trg test", "tl_ugnayan test", "ceb_gja test",
    ]  # fmt: skip


def test_span_statistics_need_a_data_root(tmp_path: Path) -> None:
    a = analysis_span_stats(study(tmp_path, []), context(tmp_path))
    assert a.unavailable == "no data root available (pass --data-dir)"


def test_particles_recall_and_vocabulary(tmp_path: Path) -> None:
    """tl_trg: 3 PER spans, 2 after "si"/"ni" (66.7%). Vanilla cell 1 finds both
    particle-preceded spans and misses the other (recall 100 / 0), cell 2 finds one of the
    two and the other one (50 / 100): mean 75 (s.d. 35.4) and 50 (s.d. 70.7). The MAML
    cell finds all three."""
    gold = "O B-PER O O B-PER O B-PER"
    words = "si Juan at ni Ana kay Pedro"
    cells = [
        cell("vanilla", sentences={"tl_trg": [sentence(words, gold, "O B-PER O O B-PER O O")]}),
        cell("vanilla", seed=1,
             sentences={"tl_trg": [sentence(words, gold, "O B-PER O O O O B-PER")]}),
        cell("maml", sentences={"tl_trg": [sentence(words, gold)]}),
    ]  # fmt: skip
    ctx = context(tmp_path, particles={"tl_trg": ["si", "ni"]})
    ctx.data = _access()
    a = analysis_particles(study(tmp_path, cells), ctx)
    recall, vocab = a.tables
    sd_75, sd_50 = (2 * 25**2) ** 0.5, (2 * 50**2) ** 0.5
    assert recall.rows == [
        pytest.approx({"dataset": "tl_trg", "variant": "maml", "particles": "si, ni",
                       "gold PER spans": 3, "preceded by particle (%)": 200 / 3,
                       "recall after particle (%)": 100.0, "s.d. (pp)": None,
                       "recall elsewhere (%)": 100.0, "s.d. (pp) ": None, "cells": 1}),
        pytest.approx({"dataset": "tl_trg", "variant": "vanilla", "particles": "si, ni",
                       "gold PER spans": 3, "preceded by particle (%)": 200 / 3,
                       "recall after particle (%)": 75.0, "s.d. (pp)": sd_75,
                       "recall elsewhere (%)": 50.0, "s.d. (pp) ": sd_50, "cells": 2}),
    ]  # fmt: skip
    # Words of more than three letters count as two subwords (share of running words); OOV
    # over casefolded word types against sk_snk's train words: tl_trg {si, juan, at, ana}
    # -> 3 of 4 unseen ("juan" is seen).
    assert vocab.rows == [
        pytest.approx({"dataset": "tl_trg", "words": 5, "split into 2+ subwords (%)": 20.0,
                       "OOV vs sk_snk (%)": 75.0}),
        pytest.approx({"dataset": "tl_ugnayan", "words": 1, "split into 2+ subwords (%)": 100.0,
                       "OOV vs sk_snk (%)": 0.0}),
        pytest.approx({"dataset": "ceb_gja", "words": 4, "split into 2+ subwords (%)": 25.0,
                       "OOV vs sk_snk (%)": 100.0}),
    ]  # fmt: skip


def test_particles_without_predictions_or_data(tmp_path: Path) -> None:
    a = analysis_particles(study(tmp_path, [cell("vanilla", f1=0.5)]), context(tmp_path))
    assert a.unavailable == "no predictions/{target}.iob2 files and no data root"

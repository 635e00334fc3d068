"""Analyses 10-11 on one hand-made sentence per target: per-word confidence changes, and the
paired differences with their intervals, worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from picomaml.study.analyses.pairs import analysis_cases, analysis_paired
from tests.study.analyses.handmade import cell, context, sentence, study

LN2 = math.log(2)
WORDS = {"tl_trg": ("si Juan", "O B-PER"), "tl_ugnayan": ("Ana", "B-PER"),
         "ceb_gja": ("ni Juan", "O B-PER")}  # fmt: skip


def _scored(variant: str, seed: int, preds: dict[str, str], p_gold: dict[str, list[float]]):
    sentences = {
        code: [sentence(words, gold, preds[code], p_gold[code])]
        for code, (words, gold) in WORDS.items()
    }
    for code, sents in sentences.items():
        sents[0].sent_id = f"{code}-1"
    return cell(variant, seed=seed, sentences=sentences, has_confidence=dict.fromkeys(WORDS, True))


# Vanilla misses "Juan" in tl_trg: pooled over the targets 2 of 3 spans, precision 1, F1 0.8.
MISS = {"tl_trg": "O O", "tl_ugnayan": "B-PER", "ceb_gja": "O B-PER"}
HIT = {code: gold for code, (_, gold) in WORDS.items()}
P_VANILLA = {"tl_trg": [0.5, 0.25], "tl_ugnayan": [0.5], "ceb_gja": [0.4, 0.5]}
P_MAML = {"tl_trg": [0.5, 0.5], "tl_ugnayan": [0.25], "ceb_gja": [0.4, 1.0]}


def test_cases_words_and_sentences_by_confidence_change(tmp_path: Path) -> None:
    """log p_MAML - log p_vanilla: Juan +ln 2 twice, Ana -ln 2, the particles 0."""
    cells = [_scored("vanilla", 0, MISS, P_VANILLA), _scored("maml", 0, MISS, P_MAML)]
    a = analysis_cases(study(tmp_path, cells), context(tmp_path))
    words, sentences = a.tables
    assert words.rows == [
        pytest.approx({"word": "Juan", "gold": "B-PER", "occurrences": 2, "mean delta log p": LN2}),
        pytest.approx({"word": "ni", "gold": "O", "occurrences": 1, "mean delta log p": 0.0}),
        pytest.approx({"word": "si", "gold": "O", "occurrences": 1, "mean delta log p": 0.0}),
        pytest.approx({"word": "Ana", "gold": "B-PER", "occurrences": 1,
                       "mean delta log p": -LN2}),
    ]  # fmt: skip
    assert sentences.rows == [
        pytest.approx({"dataset": "tl_trg", "sent_id": "tl_trg-1", "sum delta log p": LN2,
                       "sentence (gold tags)": "si Juan[B-PER]",
                       "largest word changes": "Juan +0.69, si +0.00"}),
        pytest.approx({"dataset": "ceb_gja", "sent_id": "ceb_gja-1", "sum delta log p": LN2,
                       "sentence (gold tags)": "ni Juan[B-PER]",
                       "largest word changes": "Juan +0.69, ni +0.00"}),
        pytest.approx({"dataset": "tl_ugnayan", "sent_id": "tl_ugnayan-1",
                       "sum delta log p": -LN2, "sentence (gold tags)": "Ana[B-PER]",
                       "largest word changes": "Ana -0.69"}),
    ]  # fmt: skip
    assert a.text[0].startswith("Pair: `cells/vanilla-tiny-head-sk_snk-s0` (vanilla) vs ")


def test_paired_per_pair_summary_and_across_seeds(tmp_path: Path) -> None:
    """Seed 0: identical predictions (F1 80 / 80, a zero-width interval at 0). Seed 1: MAML
    finds every span (F1 100), delta 20 pp. Across the two pairs: mean 10, t-interval
    10 -/+ 12.706 * 14.142 / sqrt 2 = [-117.1, +137.1]."""
    cells = [
        _scored("vanilla", 0, MISS, P_VANILLA), _scored("maml", 0, MISS, P_MAML),
        _scored("vanilla", 1, MISS, P_VANILLA), _scored("maml", 1, HIT, P_MAML),
    ]  # fmt: skip
    a = analysis_paired(study(tmp_path, cells), context(tmp_path))
    summary, seeds, every = a.tables
    noise = "not distinguishable from noise"
    assert summary.rows == [
        pytest.approx({"size": "tiny", "regime": "head", "pairs": 2, "mean delta (pp)": 10.0,
                       "95% t-interval across pairs (pp)": "[-117.1, +137.1]",
                       "pairs CI > 0": 0, "pairs CI < 0": 0, "verdict": noise}),
    ]  # fmt: skip
    assert seeds.rows == [
        pytest.approx({"size": "tiny", "regime": "head", "source": "sk_snk", "seeds": 2,
                       "mean delta (pp)": 10.0, "95% t-interval (pp)": "[-117.1, +137.1]",
                       "verdict": noise}),
    ]  # fmt: skip
    first, second = every.rows
    assert first == pytest.approx({"size": "tiny", "regime": "head", "source": "sk_snk",
                                   "seed": 0, "vanilla F1": 80.0, "MAML F1": 80.0,
                                   "delta (pp)": 0.0, "95% CI (pp)": "[+0.0, +0.0]",
                                   "verdict": noise})  # fmt: skip
    assert (second["vanilla F1"], second["MAML F1"]) == pytest.approx((80.0, 100.0))
    assert second["delta (pp)"] == pytest.approx(20.0)
    # Resamples without the tl_trg sentence (8 of 27) differ by 0: the interval starts at 0.
    assert second["95% CI (pp)"].startswith("[+0.0, ") and second["verdict"] == noise
    assert len(every.files[0]) == 6  # both cells' three predictions files


def test_paired_needs_predictions_on_every_target(tmp_path: Path) -> None:
    a = analysis_paired(study(tmp_path, [cell("vanilla", f1=0.5), cell("maml", f1=0.5)]),
                        context(tmp_path))  # fmt: skip
    assert a.unavailable == "no vanilla/MAML pair with predictions on all three targets"

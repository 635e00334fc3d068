"""Analyses 4-6 on a hand-made checkpoint sweep (two steps of one vanilla backbone)."""

from __future__ import annotations

from pathlib import Path

import pytest

from picomaml.study.analyses.sweeps import analysis_confidence, analysis_sweep, analysis_types
from tests.study.analyses.handmade import cell, context, scores, sentence, study

RUN = "vanilla-tiny-head-sk_snk-s0"


def _sweep_cell(step: int, f1: float, loss: list[float], p_gold: list[float]):
    log = [{"kind": "train", "step": i, "loss": x} for i, x in enumerate(loss)]
    log.append({"kind": "dev", "step": len(loss), "f1": f1 + 0.05})
    datasets = {
        "tl_trg": scores(f1, {"PER": f1 + 0.1, "LOC": f1, "ORG": 0.0}),
        "ceb_gja": scores(f1 / 2, {"PER": f1, "LOC": 0.0, "ORG": 0.0}),
    }
    sent = sentence("si Juan ay si Juan", "O B-PER O O B-PER", p_gold=p_gold)
    return cell(
        "vanilla", kind="sweep", step=step, datasets=datasets, train_log=log,
        sentences={"tl_trg": [sent]}, has_confidence={"tl_trg": True},
    )  # fmt: skip


CELLS = [
    _sweep_cell(100, 0.4, [3.0, 2.0, 1.5], [0.9, 0.6, 0.8, 0.5, 0.8]),
    _sweep_cell(0, 0.2, [3.0, 2.5], [0.5, 0.2, 0.9, 0.7, 0.4]),  # out of order: sorted by step
    cell("vanilla", f1=0.9),  # a main cell: not part of any sweep
]


def test_sweep_one_row_per_checkpoint(tmp_path: Path) -> None:
    a = analysis_sweep(study(tmp_path, CELLS), context(tmp_path))
    # No best_dev_f1 in run.json: the best dev line of the log (f1 + 0.05).
    assert a.tables[0].rows == [
        pytest.approx({"run": RUN, "step": 0, "final train loss": 2.5, "source dev F1": 25.0,
                       "tl_trg F1": 20.0, "tl_ugnayan F1": None, "ceb_gja F1": 10.0}),
        pytest.approx({"run": RUN, "step": 100, "final train loss": 1.5, "source dev F1": 45.0,
                       "tl_trg F1": 40.0, "tl_ugnayan F1": None, "ceb_gja F1": 20.0}),
    ]  # fmt: skip
    assert a.tables[0].files[0] == [
        f"cells/{RUN}/results.json",
        f"cells/{RUN}/train_log.jsonl",
    ]


def test_types_per_checkpoint_and_scored_target(tmp_path: Path) -> None:
    a = analysis_types(study(tmp_path, CELLS), context(tmp_path))
    assert a.tables[0].rows == [
        pytest.approx({"run": RUN, "step": 0, "dataset": "tl_trg",
                       "PER F1": 30.0, "LOC F1": 20.0, "ORG F1": 0.0}),
        pytest.approx({"run": RUN, "step": 0, "dataset": "ceb_gja",
                       "PER F1": 20.0, "LOC F1": 0.0, "ORG F1": 0.0}),
        pytest.approx({"run": RUN, "step": 100, "dataset": "tl_trg",
                       "PER F1": 50.0, "LOC F1": 40.0, "ORG F1": 0.0}),
        pytest.approx({"run": RUN, "step": 100, "dataset": "ceb_gja",
                       "PER F1": 40.0, "LOC F1": 0.0, "ORG F1": 0.0}),
    ]  # fmt: skip


def test_confidence_first_and_last_checkpoint(tmp_path: Path) -> None:
    """ "Juan" is the entity word (p(gold) (.2 + .4) / 2 -> (.6 + .8) / 2), "si" the most
    frequent non-entity word ((.5 + .7) / 2 -> (.9 + .5) / 2), then "ay"."""
    a = analysis_confidence(study(tmp_path, CELLS), context(tmp_path, top_words=2))
    assert a.tables[0].caption == f"{RUN}: mean p(gold) at first and last checkpoint"
    assert a.tables[0].rows == [
        pytest.approx({"dataset": "tl_trg", "kind": "entity", "word": "Juan",
                       "p(gold) step 0": 0.3, "p(gold) step 100": 0.7, "change": 0.4}),
        pytest.approx({"dataset": "tl_trg", "kind": "non-entity", "word": "si",
                       "p(gold) step 0": 0.6, "p(gold) step 100": 0.7, "change": 0.1}),
        pytest.approx({"dataset": "tl_trg", "kind": "non-entity", "word": "ay",
                       "p(gold) step 0": 0.9, "p(gold) step 100": 0.8, "change": -0.1}),
    ]  # fmt: skip
    assert (tmp_path / "figures" / f"6_confidence_{RUN}.png").is_file()


def test_without_a_sweep_all_three_say_so(tmp_path: Path) -> None:
    data = study(tmp_path, [cell("vanilla", f1=0.5)])
    for fn in (analysis_sweep, analysis_types, analysis_confidence):
        assert "no checkpoint sweep" in fn(data, context(tmp_path)).unavailable

"""The paper's numbers beside ours (``study/analyses/paper.py``), on hand-made tables.

The analyses' tables and cells here are TEST DATA written by this file; each expected
"ours" value is worked out by hand from them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from picomaml.study.analyses import Analysis, Context, Table
from picomaml.study.analyses.paper import compare, difference, format_value
from picomaml.study.paper_numbers import PaperNumber, load_paper_numbers
from picomaml.study.records import CellRecord, StudyData
from picomaml.study.report import finetune_differences, render_analysis


def _number(value, unit: str = "pp", relation: str = "=") -> PaperNumber:
    return PaperNumber("x.y", "scale", "q", unit, value, "Table 9", "quote", relation)


@pytest.mark.parametrize(
    ("paper", "ours", "text", "raw"),
    [
        (_number(6.0, "percent"), 9.25, "+3.2", 3.25),
        (_number((2.0, 6.0)), 4.0, "inside the range", 0.0),
        (_number((2.0, 6.0)), 7.5, "+1.5 above", 1.5),
        (_number((0.5, 1.3)), 0.2, "-0.3 below", pytest.approx(-0.3)),
        (_number((0.10, 0.15), "loss"), (0.2, 0.3), "+0.100 / +0.150", None),
        (_number(8.0, "count"), (1.0, 3.0), "-7 to -5", None),
        (_number(None, "f1"), 0.5, "", None),
    ],
)
def test_difference(paper, ours, text, raw):
    assert difference(paper, ours) == (text, raw)


def test_format_value_uses_the_papers_unit():
    assert format_value(0.1234, "f1") == "0.123"
    assert format_value(12.345, "percent") == "12.3 %"
    assert format_value((1.0, 2.5), "pp") == "1.0–2.5 pp"
    assert format_value(5e-05, "setting") == "5.0e-05"
    assert format_value(61.0, "count") == "61"
    assert format_value(None, "pp") == "n/a"


def _cell(kind, variant, size, regime="head", source="sk_snk", step=None, **extra) -> CellRecord:
    cell_id = f"{kind}-{variant}-{size}-{regime}-{source}-{step}"
    extra.setdefault("run", {})
    extra.setdefault("datasets", {})
    return CellRecord(
        cell_id, f"cells/{cell_id}", kind, variant, size, regime, source, 0, step, **extra
    )


def _scores(f1: float, per: float = 0.0) -> dict:
    return {
        "default": {
            "micro": {"f1": f1},
            "per_type": {"PER": {"f1": per}, "LOC": {"f1": 0.0}, "ORG": {"f1": 0.0}},
        }
    }


def _sweep_cell(step: int, tl: float, ceb: float, dev: float, loss: float) -> CellRecord:
    datasets = {
        "tl_trg": _scores(tl, 0.6),
        "tl_ugnayan": _scores(tl + 0.02),
        "ceb_gja": _scores(ceb),
    }
    log = [{"kind": "train", "step": 10, "loss": 2.0}, {"kind": "train", "step": 20, "loss": loss}]
    return _cell(
        "sweep",
        "maml",
        "tiny",
        step=step,
        run={"best_dev_f1": dev},
        datasets=datasets,
        train_log=log,
    )


@pytest.fixture
def comparisons() -> dict:
    analyses = [
        Analysis(
            "scale",
            "t",
            [Table("", ["size"], [{"size": "tiny", "delta (pp)": 0.4, "relative gain (%)": 9.0}])],
        ),
        Analysis(
            "regime",
            "t",
            [
                Table(
                    "",
                    ["regime"],
                    [
                        {"regime": "head", "size": "tiny", "delta (pp)": 1.0},
                        {"regime": "head", "size": "small", "delta (pp)": 3.0},
                        {"regime": "full", "size": "tiny", "delta (pp)": 0.5},
                    ],
                )
            ],
        ),
        Analysis("convergence", "t").missing("no train logs"),
        Analysis("sweep", "t", [Table("", ["run"], [{"run": "x"}])]),
        Analysis("types", "t", [Table("", ["run"], [{"run": "x"}])]),
    ]
    main = [_cell("main", v, s) for v in ("vanilla", "maml") for s in ("tiny", "small")]
    sweep = [
        _sweep_cell(0, 0.10, 0.05, 0.30, 0.20),
        _sweep_cell(3000, 0.20, 0.10, 0.40, 0.15),
        _sweep_cell(6000, 0.30, 0.25, 0.50, 0.12),
    ]
    data = StudyData(Path("r"), {}, main + sweep, [], [])
    run = ["fine-tuning data was sliced (max_train_sentences = ['100'])"]
    return compare(analyses, data, Context(Path("r")), load_paper_numbers(), run)


def _row(comparisons, key, id_):
    return next(r for r in comparisons[key].table.rows if r["id"] == id_)


def test_ours_is_read_off_our_tables_in_the_papers_unit(comparisons):
    tiny = _row(comparisons, "scale", "scale.relative_gain.tiny")
    assert (tiny["paper"], tiny["ours"], tiny["difference"]) == ("38 %", "9.0 %", "-29.0")
    assert tiny["paper quote"].startswith("Meta-pretraining helps at every scale")
    large = _row(comparisons, "scale", "scale.relative_gain.large")
    assert large["ours value"] is None and "not in our grid (size=large)" in large["remark"]
    assert _row(comparisons, "scale", "scale.tiny_overall_gain_pp")["ours value"] == 0.4
    assert _row(comparisons, "scale", "scale.tiny_head_gain_pp")["ours value"] == 1.0
    head = _row(comparisons, "regime", "regime.head_gain_pp.abstract")  # paper: 2-6 pp
    assert head["ours value"] == [1.0, 3.0] and head["difference"] == "-1.0 / -3.0"
    full = _row(comparisons, "regime", "regime.full_gain_pp.section3")  # paper: 0.5-1.3 pp
    assert full["ours value"] == 0.5 and full["difference"] == "inside the range"
    assert _row(comparisons, "regime", "regime.zero_shot_f1")["paper"] == "plot only"


def test_the_sweep_endpoints_come_from_the_sweep_cells(comparisons):
    tl = _row(comparisons, "sweep", "sweep.target_gain_from_initial.tl")
    assert tl["ours value"] == pytest.approx(0.20)  # tl_trg and tl_ugnayan both 0.10 -> 0.30
    assert tl["difference value"] == pytest.approx(0.05)
    assert "ours: tiny (paper: medium)" in tl["remark"]
    ceb = _row(comparisons, "sweep", "sweep.target_gain_from_initial.ceb")
    assert ceb["ours value"] == pytest.approx(0.20)
    assert _row(comparisons, "sweep", "sweep.checkpoints")["ours value"] == 3
    assert _row(comparisons, "sweep", "sweep.source_eval_f1_plateau")["ours value"] == 0.40
    assert _row(comparisons, "sweep", "sweep.source_eval_f1_iqr")["ours value"] == (
        pytest.approx(0.05)
    )
    assert _row(comparisons, "sweep", "sweep.final_train_loss_band")["ours value"] == [0.12, 0.2]
    assert _row(comparisons, "types", "types.per_f1")["ours value"] == pytest.approx(0.2)
    asymptote = _row(comparisons, "sweep", "sweep.head_train_loss_asymptote_steps")
    assert asymptote["ours"] == "n/a" and "not estimated" in asymptote["remark"]


def test_scale_differences_are_said_and_unavailable_analyses_keep_the_paper_column(
    comparisons,
):
    notes = comparisons["scale"].scale_notes
    assert notes[0].startswith("fine-tuning data was sliced")
    assert "sizes: ours tiny, small; paper tiny, small, medium, large" in notes
    assert any(n.startswith("fine-tuning sources: ours 1 of the paper's 10") for n in notes)
    assert any(
        "with 3 checkpoints; paper medium MAML with 61" in n
        for n in comparisons["sweep"].scale_notes
    )
    t90 = _row(comparisons, "convergence", "convergence.t90.tiny.head")
    assert t90["paper"] == "55.6" and "not available: no train logs" in t90["remark"]
    text = render_analysis(
        Analysis("convergence", "C").missing("no train logs"), 7, comparisons["convergence"]
    )
    assert "*Not available: no train logs.*" in text and "**Paper vs ours**" in text
    assert "| delta t90 (MAML - vanilla) | size=large, regime=full | -111.1 | n/a |" in text
    assert "Ours ran at a different scale: fine-tuning data was sliced" in text


def test_fine_tuning_settings_are_compared_with_the_papers():
    numbers = load_paper_numbers()
    ft = {"lr.head": {1e-2}, "lr.full": {3e-5}, "epochs": {10}, "batch_size": {16}}
    assert finetune_differences(ft, numbers) == [
        "fine-tuning learning rate `lr.head` = 0.01 (paper: 3e-05)"
    ]
    assert finetune_differences({"epochs": {3, 10}}, numbers) == [
        "fine-tuning epochs `epochs` = 3, 10 (paper: 10)"
    ]

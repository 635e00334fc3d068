"""Analyses 12-13 on hand-made pretraining runs: the end-of-run table and the few-shot probe
with its paired differences, worked out by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from picomaml.study.analyses.pretraining import analysis_pretraining, analysis_probe
from picomaml.study.records import PretrainRun
from tests.study.analyses.handmade import cell, context, study

#: Columns these logs leave empty.
NONE_KEYS = (
    "support acc before (%)", "feature cosine", "class share", "AR grad norm", "meta grad norm",
    "query max prob", "query entropy", "logit scale", "[MASK] norm",
)  # fmt: skip


def _with_runs(tmp_path: Path, runs: dict[str, PretrainRun]):
    data = study(tmp_path, [cell(variant, f1=0.5) for variant in runs])
    data.pretrain_run = lambda c: runs.get(c.variant)  # type: ignore[method-assign]
    return data


def test_pretraining_end_of_run_rows(tmp_path: Path) -> None:
    """Ten logged steps: the last 20% are steps 9 and 10. MAML: 8 ways, half the micro-batches
    meta, query loss at ln 8 (chance). Vanilla: AR only."""
    maml_log = [
        {"kind": "train", "step": s, "ar_loss": 10.0 - s, "meta_loss": 2.0, "ar_per_step": 1,
         "meta_per_step": 1, "support_acc_after": s / 10, "query_acc": 0.125}
        for s in range(1, 11)
    ] + [{"kind": "dynamics", "step": 10, "val_perplexity": 900.0}]  # fmt: skip
    vanilla_log = [{"kind": "train", "step": s, "ar_loss": 4.0} for s in (5, 10)]
    runs = {
        "maml": PretrainRun(tmp_path / "m", {"meta": {"enabled": True, "ways": 8}}, maml_log),
        "vanilla": PretrainRun(tmp_path / "v", {"meta": {"enabled": False}}, vanilla_log),
    }
    a = analysis_pretraining(_with_runs(tmp_path, runs), context(tmp_path))
    none = dict.fromkeys(NONE_KEYS)
    assert a.tables[0].rows == [
        pytest.approx({"variant": "maml", "size": "tiny", "steps": 10, "meta share (%)": 50.0,
                       "AR loss": 0.5, "val perplexity": 900.0, "meta loss": 2.0,
                       "chance loss ln N": math.log(8), "support acc after (%)": 95.0,
                       "query acc (%)": 12.5, "chance acc (%)": 12.5, **none}),
        pytest.approx({"variant": "vanilla", "size": "tiny", "steps": 10,
                       "meta share (%)": None, "AR loss": 4.0, "val perplexity": None,
                       "meta loss": None, "chance loss ln N": None,
                       "support acc after (%)": None, "query acc (%)": None,
                       "chance acc (%)": None, **none}),
    ]  # fmt: skip
    assert a.tables[0].files == [[str(tmp_path / "m" / "metrics.jsonl")],
                                 [str(tmp_path / "v" / "metrics.jsonl")]]  # fmt: skip


def _probe(prototype: list[float], adapted: list[float]) -> dict:
    def acc(per_episode: list[float]) -> dict:
        m = sum(per_episode) / len(per_episode)
        return {"mean": m, "ci95": [m - 0.1, m + 0.1], "per_episode": per_episode,
                "n": len(per_episode)}  # fmt: skip

    same = {"settings": {"ways": 4}, "corpus": "valid", "version": 2, "chance": 0.25}
    return {**same, "checkpoints": [{"step": 20, "prototype": acc(prototype),
                                     "adapted": acc(adapted)}]}  # fmt: skip


def test_probe_rows_and_paired_differences(tmp_path: Path) -> None:
    """Prototype differences per episode 0 and .2: mean 10 pp, half-width
    12.706 * .1414 / sqrt 2 = 127.06 pp. Adapted differences .4 and .4: a zero-width
    interval above 0."""
    runs = {
        "maml": PretrainRun(tmp_path / "m", {}, None, _probe([0.5, 0.7], [0.6, 0.8])),
        "vanilla": PretrainRun(tmp_path / "v", {}, None, _probe([0.5, 0.5], [0.2, 0.4])),
    }
    a = analysis_probe(_with_runs(tmp_path, runs), context(tmp_path))
    rows, diffs = a.tables
    assert rows.rows == [
        pytest.approx({"variant": "maml", "size": "tiny", "step": 20,
                       "prototype acc (%)": 60.0, "prototype CI low (%)": 50.0,
                       "prototype CI high (%)": 70.0, "adapted acc (%)": 70.0,
                       "adapted CI low (%)": 60.0, "adapted CI high (%)": 80.0,
                       "chance (%)": 25.0, "episodes": 2}),
        pytest.approx({"variant": "vanilla", "size": "tiny", "step": 20,
                       "prototype acc (%)": 50.0, "prototype CI low (%)": 40.0,
                       "prototype CI high (%)": 60.0, "adapted acc (%)": 30.0,
                       "adapted CI low (%)": 20.0, "adapted CI high (%)": 40.0,
                       "chance (%)": 25.0, "episodes": 2}),
    ]  # fmt: skip
    half = 12.706 * math.sqrt(0.02) / math.sqrt(2) * 100
    assert diffs.rows == [
        pytest.approx({"size": "tiny", "step": 20, "prototype MAML - vanilla (pp)": 10.0,
                       "prototype CI low (pp)": 10.0 - half, "prototype CI high (pp)": 10.0 + half,
                       "prototype verdict": "not distinguishable from noise",
                       "adapted MAML - vanilla (pp)": 40.0, "adapted CI low (pp)": 40.0,
                       "adapted CI high (pp)": 40.0,
                       "adapted verdict": "MAML better (interval > 0)"}),
    ]  # fmt: skip
    assert diffs.files == [[str(tmp_path / "m" / "probe.json"), str(tmp_path / "v" / "probe.json")]]


def test_probe_needs_a_probe_json(tmp_path: Path) -> None:
    runs = {"maml": PretrainRun(tmp_path / "m", {}, None, None)}
    assert (
        "holds a probe.json"
        in analysis_probe(_with_runs(tmp_path, runs), context(tmp_path)).unavailable
    )

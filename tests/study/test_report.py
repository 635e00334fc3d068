"""Report generation from a synthetic results directory.

Everything under ``tmp_path`` here is TEST DATA written by this file (made-up
predictions on a handful of Tagalog/Cebuano-like sentences), not model output.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from picomaml.config import from_dict, save_config
from picomaml.model import config_for
from picomaml.ner.metrics import entity_scores
from picomaml.study.analyses import DataAccess
from picomaml.study.config import GridConfig
from picomaml.study.report import write_report

TL = [
    ("Pumunta si Maria sa Cebu .", "O O B-PER O B-LOC O"),
    ("Inahit ni John ang sarili niya .", "O O B-PER O O O O"),
    ("Malapit kay Maria si Juan .", "O O B-PER O B-PER O"),
    ("Nagsalita Obama kahapon .", "O B-PER O O"),
]
CEB = [
    ("Miadto si Juan sa Sugbo .", "O O B-PER O B-LOC O"),
    ("Miadto Juan sa Sugbo .", "O B-PER O B-LOC O"),
]
TARGET_SENTS = {"tl_trg": TL, "tl_ugnayan": TL[:2], "ceb_gja": CEB}


def _predict(tokens, gold, variant, seed, step):
    """Synthetic tagger: MAML finds every PER; vanilla only PER after 'si'/'ni'."""
    pred = []
    for i, g in enumerate(gold):
        found_per = g.endswith("PER") and (variant == "maml" or tokens[i - 1] in ("si", "ni"))
        found_loc = g.endswith("LOC") and (step or 0) >= 40
        pred.append(g if found_per or found_loc else "O")
    if variant == "vanilla" and seed == 1:
        pred[0] = "B-ORG"  # a false positive
    return pred


def _write_cell(root, cell_id, meta, variant, size, regime, source, seed, step=None):
    d = root / "cells" / cell_id
    (d / "predictions").mkdir(parents=True)
    (d / "confidence").mkdir()
    datasets = {}
    for code, sents in TARGET_SENTS.items():
        golds, preds, lines, conf = [], [], [], []
        for k, (text, tags) in enumerate(sents):
            tokens, gold = text.split(), tags.split()
            pred = _predict(tokens, gold, variant, seed, step)
            golds.append(gold)
            preds.append(pred)
            boost = 0.3 if variant == "maml" else 0.0
            p_gold = [min(1.0, (0.5 + boost if g != "O" else 0.9)) for g in gold]
            for i, (t, g, p) in enumerate(zip(tokens, gold, pred, strict=True)):
                lines.append(f"{i + 1}\t{t}\t{g}\t{p}")
            lines.append("")
            conf.append(
                {
                    "sent_id": f"{code}-{k}",
                    "tokens": tokens,
                    "gold": gold,
                    "pred": pred,
                    "p_gold": p_gold,
                }
            )
        (d / "predictions" / f"{code}.iob2").write_text("\n".join(lines) + "\n")
        (d / "confidence" / f"{code}.jsonl").write_text(
            "\n".join(json.dumps(c) for c in conf) + "\n"
        )
        scores = {m: entity_scores(golds, preds, m) for m in ("default", "strict")}
        datasets[code] = {
            "n_sentences": len(sents),
            "n_gold_entities": scores["default"]["micro"]["support"],
            **scores,
            "bootstrap": {"n_resamples": 10, "seed": 0, "f1_ci95": [0.0, 1.0]},
        }
    run = {
        "backbone": meta["backbone"],
        "backbone_config": dataclasses.asdict(config_for("tiny")),
        "source": source,
        "regime": regime,
        "seed": seed,
        "variant": variant,
        "size": size,
        "pretrain_step": step if step is not None else 60,
        "best_epoch": 1,
        "best_dev_f1": 0.5 + (0.1 if variant == "maml" else 0.0),
    }
    (d / "run.json").write_text(json.dumps(run))
    (d / "results.json").write_text(json.dumps({"run": run, "datasets": datasets}))
    (d / "cell.json").write_text(json.dumps(meta | {"cell_id": cell_id}))
    fast = variant == "maml"
    losses = [2.0, 0.8 if fast else 1.5, 0.6 if fast else 1.0, 0.5, 0.5]
    log = [{"kind": "train", "step": 10 * i, "epoch": 0, "loss": x} for i, x in enumerate(losses)]
    log.append({"kind": "dev", "step": 40, "epoch": 0, "f1": 0.5, "precision": 0.5, "recall": 0.5})
    (d / "train_log.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    (d / "finetune.yaml").write_text(
        yaml.safe_dump(
            {
                "backbone": meta["backbone"],
                "source": source,
                "regime": regime,
                "seed": seed,
                "lr": 3e-5,
                "max_epochs": 2,
                "max_train_sentences": 100,
            }
        )
    )


def _probe(variant: str) -> dict:
    """A probe.json: MAML is 10 points better on every other one of 4 episodes."""
    bonus = 0.1 if variant == "maml" else 0.0
    checkpoints = []
    for step in (20, 60):
        proto = [0.2, 0.3 + bonus, 0.2, 0.3 + bonus]
        adapted = [0.25, 0.25, 0.35, 0.35]
        entry = {"step": step, "backbone": f"pre/{variant}/checkpoints/step_{step}"}
        for kind, values in (("prototype", proto), ("adapted", adapted)):
            mean = sum(values) / 4
            entry[kind] = {"mean": mean, "ci95": [mean - 0.05, mean + 0.05], "n": 4,
                           "per_episode": values}  # fmt: skip
        checkpoints.append(entry)
    return {
        "kind": "probe", "version": 1, "settings": {"ways": 8}, "corpus": "valid",
        "chance": 0.125, "checkpoints": checkpoints,
    }  # fmt: skip


def make_results(root: Path, sweep: bool = True) -> Path:
    """A results dir: 2 variants x 2 regimes x 2 sources x 2 seeds (+ a MAML sweep)."""
    grid = {
        "name": "synthetic",
        "backbones": [],
        "regimes": ["head", "full"],
        "sources": ["sk_snk", "da_ddt"],
        "seeds": [0, 1],
    }
    for variant in ("vanilla", "maml"):
        run_dir = root / "pre" / variant
        (run_dir / "checkpoints").mkdir(parents=True)
        (run_dir / "config.yaml").write_text(
            yaml.safe_dump(
                {
                    "model": {"size": "tiny"},
                    "data": {"corpus": "corpus/english-mini/train.jsonl.gz", "seq_len": 128},
                    "training": {"max_steps": 60, "batch_size": 8},
                    "meta": {
                        "enabled": variant == "maml",
                        "rho": 0.5,
                        "ways": 8,
                        "shots": 4,
                        "inner_steps": 10,
                        "inner_lr": 0.001,
                    },
                }
            )
        )
        maml = variant == "maml"
        logged = [
            {
                "kind": "train",
                "step": s,
                "ar_loss": 9.0 - 0.05 * s,
                "ar_per_step": 1 + (not maml),
                "meta_per_step": int(maml),
                "meta_loss": 2.0 - 0.01 * s if maml else None,
            }
            for s in range(5, 65, 5)
        ] + [{"kind": "dynamics", "step": 60, "val_perplexity": 800.0}]
        (run_dir / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in logged) + "\n")
        (run_dir / "probe.json").write_text(json.dumps(_probe(variant)))
        grid["backbones"].append({"variant": variant, "size": "tiny", "path": str(run_dir)})
    if sweep:
        grid["sweeps"] = [{"variants": ["maml"], "sizes": ["tiny"], "steps": [20, 40]}]
    cfg = from_dict(GridConfig, grid)
    (root / "res").mkdir()
    save_config(cfg, root / "res" / "grid.yaml")
    res = root / "res"
    for b in cfg.backbones:
        for regime in cfg.regimes:
            for source in cfg.sources:
                for seed in cfg.seeds:
                    cid = f"{b.variant}-tiny-{regime}-{source}-s{seed}"
                    meta = {
                        "kind": "main",
                        "variant": b.variant,
                        "size": "tiny",
                        "regime": regime,
                        "source": source,
                        "seed": seed,
                        "backbone": b.path,
                        "step": None,
                    }
                    _write_cell(res, cid, meta, b.variant, "tiny", regime, source, seed)
    if sweep:
        for step in (20, 40):
            bb = f"{root}/pre/maml/checkpoints/step_{step}"
            meta = {
                "kind": "sweep",
                "variant": "maml",
                "size": "tiny",
                "regime": "head",
                "source": "sk_snk",
                "seed": 0,
                "backbone": bb,
                "step": step,
            }
            _write_cell(
                res,
                f"sweep-maml-tiny-head-sk_snk-s0-step{step:06d}",
                meta,
                "maml",
                "tiny",
                "head",
                "sk_snk",
                0,
                step,
            )
    err = res / "cells" / "maml-small-head-sk_snk-s0"
    err.mkdir()
    (err / "error.json").write_text(json.dumps({"message": "synthetic: out of memory"}))
    (res / "cells" / "maml-small-full-sk_snk-s0").mkdir()
    return res


def fake_data() -> DataAccess:
    def sentences(code, split):
        if code in TARGET_SENTS:
            return [(t.split(), g.split()) for t, g in TARGET_SENTS[code]]
        return [(["Maria", "went", "to", "Bratislava"], ["B-PER", "O", "O", "B-LOC"])]

    return DataAccess(sentences, lambda words: [1 + len(w) // 5 for w in words])


def test_report_from_synthetic_results(tmp_path):
    res = make_results(tmp_path)
    path = write_report(res, data=fake_data())
    text = path.read_text()
    assert "DEMO SCALE" in text and "configs/study/paper.yaml" in text
    assert (
        "maml-tiny, vanilla-tiny: pretrained for 60 steps" in text
        and "fine-tuning data was sliced" in text
    )
    for n in range(1, 14):
        assert f"### {n}. " in text
    assert "the episodes are learned (query loss below chance)" in text
    assert "Not available" not in text
    for fig in (
        "1_scale",
        "2_regime",
        "3_sources",
        "4_sweep",
        "5_types",
        "7_convergence",
        "10_cases",
        "11_paired",
        "12_pretraining",
        "13_probe",
    ):
        assert (res / "figures" / f"{fig}.png").stat().st_size > 5000
        assert f"figures/{fig}.png" in text
    assert (res / "figures" / "6_confidence_maml-tiny-head-sk_snk-s0.png").is_file()
    assert "`cells/maml-small-head-sk_snk-s0/error.json`: synthetic: out of memory" in text
    assert "cells/maml-small-full-sk_snk-s0`: incomplete" in text
    assert "| ../pre/maml/config.yaml |" in text  # methods cite the config, relative
    assert str(tmp_path) not in text.split("## Methods")[1]  # methods and every citation
    assert "`../pre/maml/probe.json`" in text
    assert "`lr`=3e-05" in text
    assert "## Warnings" not in text

    # Numbers are traceable: recompute the scale table from the cited files.
    scale = json.loads((res / "tables" / "scale.json").read_text())["tables"][0]
    row, files = scale["rows"][0], scale["files"][0]
    assert len(files) == 16  # 8 vanilla + 8 MAML main cells
    by_variant: dict[str, list[float]] = {"vanilla": [], "maml": []}
    for f in files:
        r = json.loads((res / f).read_text())
        zs = sum(r["datasets"][t]["default"]["micro"]["f1"] for t in TARGET_SENTS) / 3
        by_variant[r["run"]["variant"]].append(zs)
    assert row["vanilla F1"] == pytest.approx(100 * sum(by_variant["vanilla"]) / 8)
    assert row["MAML F1"] == pytest.approx(100 * sum(by_variant["maml"]) / 8)
    assert row["MAML F1"] > row["vanilla F1"]
    assert row["parameters"] == 11_282_784  # the tiny tier, from run.json's backbone_config

    probe = json.loads((res / "tables" / "probe.json").read_text())["tables"]
    assert [(r["variant"], r["step"]) for r in probe[0]["rows"]] == [
        ("maml", 20), ("maml", 60), ("vanilla", 20), ("vanilla", 60),
    ]  # fmt: skip
    diff = probe[1]["rows"][0]
    assert diff["prototype MAML - vanilla (pp)"] == pytest.approx(5.0)  # (0+10+0+10)/4
    assert diff["prototype CI low (pp)"] < 5.0 < diff["prototype CI high (pp)"]
    assert diff["adapted MAML - vanilla (pp)"] == pytest.approx(0.0)
    # Per-episode differences 0, .1, 0, .1: t_{.975,3} = 3.182, sd = .0577, half = 9.19 pp.
    assert diff["prototype CI low (pp)"] == pytest.approx(5.0 - 9.19, abs=0.01)
    assert diff["prototype verdict"] == "not distinguishable from noise"
    # Identical adapted accuracies: a zero-width interval at 0 still includes 0.
    assert diff["adapted CI low (pp)"] == diff["adapted CI high (pp)"] == pytest.approx(0.0)
    assert diff["adapted verdict"] == "not distinguishable from noise"

    paired = json.loads((res / "tables" / "paired.json").read_text())["tables"]
    assert paired[0]["rows"][0]["pairs"] == 4  # head: 2 sources x 2 seeds
    assert any("Across-seed" in t["caption"] for t in paired)
    particles = json.loads((res / "tables" / "particles.json").read_text())["tables"][0]["rows"]
    tl_v = next(r for r in particles if r["dataset"] == "tl_trg" and r["variant"] == "vanilla")
    # tl_trg: 5 PER spans, 4 after si/ni/kay/si -> 80% preceded by a particle
    assert tl_v["preceded by particle (%)"] == pytest.approx(80.0)
    # vanilla finds PER only after si/ni: 3 of the 4 particle spans, 0 of 1 elsewhere
    assert tl_v["recall after particle (%)"] == pytest.approx(75.0)
    assert tl_v["recall elsewhere (%)"] == 0.0
    sweep = json.loads((res / "tables" / "sweep.json").read_text())["tables"][0]["rows"]
    assert [r["step"] for r in sweep] == [20, 40]


def test_report_says_what_is_missing(tmp_path):
    res = make_results(tmp_path, sweep=False)
    run_json = res / "cells" / "maml-tiny-head-sk_snk-s0" / "results.json"
    payload = json.loads(run_json.read_text())
    payload["run"]["variant"] = "vanilla"  # a mislabelled backbone must be flagged
    run_json.write_text(json.dumps(payload))
    text = write_report(res, data=None, data_root=None).read_text()
    assert "### 4. Checkpoint sweep" in text
    assert text.count("*Not available: the grid had no checkpoint sweep") == 3
    assert "Not available: no data root available" in text
    assert "labelled variant 'maml' by the grid, but its backbone's pretraining config" in text


def test_a_second_report_fails_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 22: the report holds its results dir's lock while it writes."""
    from picomaml.cli.main import main
    from tests.fixtures.holder import held_elsewhere

    results = tmp_path / "res"
    (results / "cells").mkdir(parents=True)
    with held_elsewhere(results, "report") as other:
        assert main(["report", str(results)]) == 2
    assert capsys.readouterr().err == (
        f"picomaml: error: {results} is in use by another picomaml process (PID {other.pid}, "
        "report); wait for it to end or use another directory\n"
    )
    assert not (results / "report.md").exists()

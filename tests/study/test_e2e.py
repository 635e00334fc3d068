"""End to end on real data: pretrain two micro backbones, run a grid, write the report.

Slow (about a minute on 2 cores): excluded from ``make test``, run with ``make test-slow``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from picomaml.study.demo import run_demo

ROOT = Path(__file__).resolve().parents[2]
MICRO = [
    "training.max_steps=4",
    "training.warmup_steps=1",
    "checkpointing.every=2",
    "dynamics.every=2",
    "dynamics.eval_batches=1",
    "logging.progress_bar=false",
]


@pytest.mark.slow
@pytest.mark.needs_real_data
def test_demo_pipeline_end_to_end(tmp_path, data_dir):
    grid = yaml.safe_load((ROOT / "configs/study/demo.yaml").read_text())
    for b in grid["backbones"]:
        b["pretrain_config"] = str(ROOT / b["pretrain_config"])
        b["pretrain_overrides"] = MICRO
    grid["sources"] = ["sk_snk"]
    grid["finetune"].update(max_train_sentences=40, max_dev_sentences=20, epochs=1)
    grid["evaluate"]["datasets"] = ["tl_trg", "tl_ugnayan", "ceb_gja"]
    cfg = tmp_path / "grid.yaml"
    cfg.write_text(yaml.safe_dump(grid))
    out = tmp_path / "res"

    report = run_demo(out, data_root=data_dir, config=cfg)
    text = report.read_text()
    assert "DEMO SCALE" in text
    cells = sorted(p.name for p in (out / "cells").iterdir())
    assert "maml-tiny-full-sk_snk-s0" in cells and "vanilla-tiny-head-sk_snk-s0" in cells
    assert any(c.startswith("sweep-maml-tiny-head-sk_snk-s0-step") for c in cells)
    assert not list((out / "cells").glob("*/error.json"))
    scale = json.loads((out / "tables" / "scale.json").read_text())
    assert scale["unavailable"] is None
    assert scale["tables"][0]["rows"][0]["pairs"] == 2  # head and full
    assert (out / "figures" / "1_scale.png").is_file()

    # Rerun: pretraining and every cell are reused, the report is rewritten.
    mtime = (out / "cells" / "maml-tiny-full-sk_snk-s0" / "results.json").stat().st_mtime
    run_demo(out, data_root=data_dir, config=cfg)
    assert (out / "cells" / "maml-tiny-full-sk_snk-s0" / "results.json").stat().st_mtime == mtime

"""The shipped grid configs are valid, and the demo's pretraining presets are a fair pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from picomaml.cli.main import main
from picomaml.config import to_dict
from picomaml.layout import latest_step_of_run
from picomaml.study.config import load_grid
from picomaml.study.demo import resolve_repo_path
from picomaml.study.grid import expand_cells

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["paper", "demo"])
def test_shipped_grids_load_with_finetune_keys_validated(name):
    cfg = load_grid(ROOT / f"configs/study/{name}.yaml")
    for b in cfg.backbones:
        assert b.pretrain_config and (ROOT / b.pretrain_config).is_file()


def test_demo_grid_is_a_fair_small_comparison(tmp_path):
    from picomaml.pretrain.config import load_pretrain_config

    cfg = load_grid(ROOT / "configs/study/demo.yaml")
    cells = expand_cells(cfg, tmp_path)
    assert len(cells) == 8  # 2 variants x 2 regimes x 2 sources; sweep adds checkpoints later
    assert {c.regime for c in cells} == {"head", "full"}
    assert len({c.source for c in cells}) >= 2
    assert all(c.backbone.startswith(str(tmp_path)) for c in cells)
    presets = {b.variant: load_pretrain_config(ROOT / b.pretrain_config) for b in cfg.backbones}
    van, maml = to_dict(presets["vanilla"]), to_dict(presets["maml"])
    assert not van["meta"]["enabled"] and maml["meta"]["enabled"]
    van["meta"]["enabled"] = True
    assert van == maml  # identical data, steps, seed: only the switch differs
    assert cfg.finetune["max_train_sentences"] > 0  # the report flags the slicing


def test_latest_step_and_repo_paths(tmp_path):
    assert latest_step_of_run(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest").write_text("step_60\n")
    assert latest_step_of_run(tmp_path) == 60
    assert resolve_repo_path("configs/study/demo.yaml").is_file()


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "g.yaml"
    bad.write_text("name: x\nbackbones: []\n")
    assert main(["grid", str(bad)]) == 2
    assert "backbones: expected at least one backbone" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no cells/ folder" in capsys.readouterr().err

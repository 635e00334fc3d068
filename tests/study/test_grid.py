"""Grid expansion, sharding, skipping and failure recording (with a fake cell runner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from picomaml.config import from_dict, load_config
from picomaml.errors import PicomamlError
from picomaml.model.backbone import local_checkpoints
from picomaml.study.config import GridConfig
from picomaml.study.grid import (
    Cell,
    expand_cells,
    finetune_and_evaluate,
    parse_shard,
    run_grid,
    shard_cells,
)

ROOT = Path(__file__).resolve().parents[2]


def fake_runner(cell: Cell, cell_dir: Path, cfg: GridConfig, data_root: Path | None) -> None:
    """Test double for fine-tune + evaluate: fails for da_ddt, else writes results.json."""
    if cell.source == "da_ddt":
        raise RuntimeError(f"synthetic failure in {cell.cell_id}")
    (cell_dir / "results.json").write_text(json.dumps({"run": {}, "datasets": {}}))


def _grid(tmp_path: Path, **extra) -> GridConfig:
    backbones = []
    for v in ("vanilla", "maml"):
        path = tmp_path / "pre" / v
        path.mkdir(parents=True, exist_ok=True)
        backbones.append({"variant": v, "size": "tiny", "path": str(path)})
    data = {
        "name": "t",
        "backbones": backbones,
        "regimes": ["head", "full"],
        "sources": ["sk_snk", "da_ddt"],
        "seeds": [0],
    }
    data.update(extra)
    return from_dict(GridConfig, data)


def test_paper_grid_is_160_cells_and_shards_partition_it(tmp_path):
    cfg = load_config(GridConfig, ROOT / "configs/study/paper.yaml")
    cells = expand_cells(cfg, tmp_path)  # no checkpoints on disk: the sweep adds nothing
    assert len(cells) == 160
    ids = [c.cell_id for c in cells]
    assert len(set(ids)) == 160
    assert {c.variant for c in cells} == {"vanilla", "maml"}
    assert {c.size for c in cells} == {"tiny", "small", "medium", "large"}
    assert len({c.source for c in cells}) == 10
    assert expand_cells(cfg, tmp_path) == cells  # deterministic
    for n in (1, 3, 7, 16, 200):
        shards = [shard_cells(cells, i, n) for i in range(n)]
        flat = [c.cell_id for s in shards for c in s]
        assert sorted(flat) == sorted(ids)  # covering and disjoint
        assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_sweep_expands_complete_checkpoints(tmp_path):
    run = tmp_path / "pre" / "maml"
    for step, complete in ((0, True), (20, True), (100, True), (40, False)):
        d = run / "checkpoints" / f"step_{step}"
        d.mkdir(parents=True)
        if complete:
            (d / "model.safetensors").write_bytes(b"")
    assert [step for step, _ in local_checkpoints(run)] == [0, 20, 100]
    cfg = _grid(tmp_path, sweeps=[{"variants": ["maml"], "sizes": ["tiny"]}])
    sweep = [c for c in expand_cells(cfg, tmp_path) if c.kind == "sweep"]
    assert [c.step for c in sweep] == [0, 20, 100]
    assert sweep[1].backbone == str(run / "checkpoints" / "step_20")
    assert sweep[1].cell_id == "sweep-maml-tiny-head-sk_snk-s0-step000020"
    explicit = _grid(tmp_path, sweeps=[{"variants": ["maml"], "sizes": ["tiny"], "steps": [5, 7]}])
    assert [c.step for c in expand_cells(explicit, tmp_path) if c.kind == "sweep"] == [5, 7]


def test_run_grid_skips_done_and_records_failures(tmp_path):
    cfg = _grid(tmp_path)
    results = tmp_path / "res"
    summary = run_grid(cfg, results, runner=fake_runner, progress=False)
    assert summary.total == 8
    assert len(summary.ok) == 4 and len(summary.failed) == 4 and not summary.skipped
    err = json.loads((results / "cells/maml-tiny-full-da_ddt-s0/error.json").read_text())
    assert err["message"] == "synthetic failure in maml-tiny-full-da_ddt-s0"
    assert "RuntimeError" in err["traceback"] and "fake_runner" in err["traceback"]
    assert (results / "grid.yaml").is_file()
    cell = json.loads((results / "cells/vanilla-tiny-head-sk_snk-s0/cell.json").read_text())
    assert cell["source"] == "sk_snk" and cell["kind"] == "main"
    again = run_grid(cfg, results, runner=fake_runner, progress=False)
    assert sorted(again.skipped) == sorted(summary.ok)
    assert sorted(again.failed) == sorted(summary.failed)  # failed cells are retried
    assert not again.ok


def test_run_grid_shard_and_workers(tmp_path):
    cfg = _grid(tmp_path)
    results = tmp_path / "res"
    s0 = run_grid(cfg, results, shard=(0, 2), workers=2, runner=fake_runner, progress=False)
    assert s0.total == 4
    s1 = run_grid(cfg, results, shard=(1, 2), runner=fake_runner, progress=False)
    assert set(s0.ok + s0.failed).isdisjoint(s1.ok + s1.failed)
    assert len(s0.ok + s0.failed + s1.ok + s1.failed) == 8
    failed = s0.failed + s1.failed
    assert len(failed) == 4
    assert all((results / f"cells/{c}/error.json").is_file() for c in failed)


def test_runner_without_results_is_a_failure(tmp_path):
    cfg = _grid(tmp_path, sources=["sk_snk"], regimes=["head"])
    summary = run_grid(cfg, tmp_path / "r", runner=lambda *a: None, progress=False)
    assert len(summary.failed) == 2
    msg = json.loads((tmp_path / f"r/cells/{summary.failed[0]}/error.json").read_text())["message"]
    assert "without writing" in msg


def test_missing_backbone_and_changed_grid_are_errors(tmp_path):
    cfg = _grid(tmp_path)
    cfg.backbones[0].path = str(tmp_path / "nope")
    cfg.backbones[0].pretrain_config = "configs/pretrain/vanilla-tiny.yaml"
    with pytest.raises(PicomamlError, match="nope.*picomaml pretrain --config"):
        run_grid(cfg, tmp_path / "r1", runner=fake_runner, progress=False)
    ok = _grid(tmp_path)
    run_grid(ok, tmp_path / "r2", runner=fake_runner, progress=False)
    changed = _grid(tmp_path, seeds=[0, 1])
    with pytest.raises(PicomamlError, match="different grid"):
        run_grid(changed, tmp_path / "r2", runner=fake_runner, progress=False)


def test_results_placeholder(tmp_path):
    cfg = from_dict(
        GridConfig,
        {"name": "d", "backbones": [{"variant": "maml", "size": "demo", "path": "{results}/p/m"}]},
    )
    assert expand_cells(cfg, tmp_path)[0].backbone == str(tmp_path / "p/m")


@pytest.mark.parametrize(
    ("patch", "match"),
    [
        ({"regime": ["head"]}, "unknown config key"),
        ({"sources": ["xx_yyy"]}, "unknown source"),
        ({"regimes": ["partial"]}, "regimes"),
        ({"seeds": [0, 0]}, "duplicates"),
        ({"sweeps": [{"variants": ["maml"], "sizes": ["huge"]}]}, "no backbone declared"),
        ({"sweeps": [{"variants": ["maml"], "sizes": ["tiny"], "steps": "some"}]}, "steps"),
        ({"evaluate": {"datasets": ["tl_trg", "xx"]}}, "unknown evaluation dataset"),
        ({"finetune": {"seed": 3}}, "set per cell"),
        ({"analysis": {"particles": {"en_ewt": ["the"]}}}, "unknown target"),
    ],
)
def test_grid_validation(tmp_path, patch, match):
    data = yaml.safe_load((ROOT / "configs/study/paper.yaml").read_text())
    data.update(patch)
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(PicomamlError, match=match):
        load_config(GridConfig, path)


def test_parse_shard():
    assert parse_shard("3/16") == (3, 16)
    for bad in ("16/16", "a/b", "1", "0/0"):
        with pytest.raises(PicomamlError):
            parse_shard(bad)


def test_default_cell_without_a_data_root_fails_with_the_missing_data_line(tmp_path):
    """The CLI passes None when it found no root: the cell records the one-line error."""
    cfg = _grid(tmp_path, sources=["sk_snk"], regimes=["head"])
    cell = expand_cells(cfg, tmp_path)[0]
    with pytest.raises(PicomamlError, match=r"not found \(no data root; tried .*data download"):
        finetune_and_evaluate(cell, tmp_path / "cell", cfg, None)
    assert not (tmp_path / "cell").exists()  # nothing was fine-tuned


def test_only_the_cli_resolves_the_data_root():
    """Library stages take a resolved ``data_root``; looking one up is the CLI's job."""
    src = ROOT / "src" / "picomaml"
    callers = sorted(
        str(f.relative_to(src))
        for f in src.rglob("*.py")
        if "resolve_data_dir(" in f.read_text("utf-8") or "find_data_dir(" in f.read_text("utf-8")
    )
    assert callers == ["cli/common.py", "data/download.py", "data/paths.py"]

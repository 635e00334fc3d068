"""Grids over published checkpoints: the configs expand without the network, and a grid on
the fake Hub (:mod:`tests.fixtures.fakehub`) runs, records commits and reports beside the
paper's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from picomaml.cli.main import main as cli_main
from picomaml.config import from_dict
from picomaml.errors import PicomamlError
from picomaml.model import hub as hub_module
from picomaml.model.backbone import resolve_backbone
from picomaml.study.cell import Cell
from picomaml.study.config import GridConfig, load_grid
from picomaml.study.grid import expand_cells, run_grid, shard_cells
from picomaml.study.report import write_report
from tests.fixtures.fakehub import MAML, VANILLA

ROOT = Path(__file__).resolve().parents[2]
MEDIUM_MAML = "hf:davidafrica/pico-maml-decoder-medium/checkpoints/step_"


@pytest.fixture
def no_hub(monkeypatch):
    """Any attempt to reach huggingface_hub fails the test."""

    def refuse() -> None:
        raise AssertionError("the grid asked the Hub while expanding")

    monkeypatch.setattr(hub_module, "_hub", refuse)


def test_published_grid_expands_to_the_paper_grid_without_the_network(tmp_path, no_hub):
    cfg = load_grid(ROOT / "configs/study/published.yaml")
    cells = expand_cells(cfg, tmp_path)
    main = [c for c in cells if c.kind == "main"]
    sweep = [c for c in cells if c.kind == "sweep"]
    assert len(main) == 160 and len({c.cell_id for c in cells}) == len(cells) == 228
    assert {(c.variant, c.size) for c in main} == {
        (v, s) for v in ("vanilla", "maml") for s in ("tiny", "small", "medium", "large")
    }
    assert all(c.backbone.startswith("hf:") for c in cells)
    maml = [c for c in sweep if c.variant == "maml"]
    assert [c.step for c in maml] == list(range(0, 6001, 100))
    assert [c.backbone for c in maml[:2]] == [f"{MEDIUM_MAML}0", f"{MEDIUM_MAML}100"]
    vanilla = [c for c in sweep if c.variant == "vanilla"]
    assert [c.step for c in vanilla] == list(range(0, 6001, 1000))
    # The vanilla sweep's last step is the main grid's medium baseline (the same commit).
    medium = next(c for c in main if c.variant == "vanilla" and c.size == "medium")
    assert vanilla[-1].backbone == medium.backbone
    assert expand_cells(load_grid(ROOT / "configs/study/published.yaml"), tmp_path) == cells
    shards = [shard_cells(cells, i, 16) for i in range(16)]
    assert sorted(c.cell_id for s in shards for c in s) == sorted(c.cell_id for c in cells)


def test_published_demo_grid_expands_without_the_network(tmp_path, no_hub):
    cells = expand_cells(load_grid(ROOT / "configs/study/published-demo.yaml"), tmp_path)
    assert len([c for c in cells if c.kind == "main"]) == 8
    sweep = [(c.variant, c.step) for c in cells if c.kind == "sweep"]
    assert sweep == [(v, s) for v in ("vanilla", "maml") for s in (0, 3000, 6000)]
    assert {c.size for c in cells} == {"tiny"} and {c.source for c in cells} == {"sk_snk", "en_ewt"}


def _hub_grid(**sweep_overrides) -> dict:
    return {
        "name": "hub",
        "backbones": [
            {"variant": "maml", "size": "tiny", "path": f"hf:{MAML}/checkpoints/step_1000"},
            {"variant": "vanilla", "size": "tiny", "path": f"hf:{VANILLA}@main"},
        ],
        "regimes": ["head"],
        "sources": ["sk_snk"],
        "sweeps": [{"variants": ["maml"], "sizes": ["tiny"], **sweep_overrides}],
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": "all"}, "`steps: all` over backbone variant=maml size=tiny"),
        ({"variants": ["vanilla"], "steps": [0]}, "names no checkpoints/step_N folder"),
    ],
)
def test_hub_sweeps_need_steps_known_offline(change, message):
    with pytest.raises(PicomamlError, match=message):
        from_dict(GridConfig, _hub_grid(**change))


def test_checkpoint_mappings_and_references_are_checked_at_load():
    data = _hub_grid(variants=["vanilla"], steps=[0, 500])
    data["backbones"][1]["checkpoints"] = {0: f"hf:{VANILLA}@abc", 1000: f"hf:{VANILLA}@def"}
    with pytest.raises(PicomamlError, match=r"steps \[500\] have no entry in the `checkpoints:`"):
        from_dict(GridConfig, data)
    data["backbones"][1]["checkpoints"] = f"hf:{VANILLA}/no-step-placeholder"
    with pytest.raises(PicomamlError, match="checkpoints: expected a template containing"):
        from_dict(GridConfig, data)
    data = _hub_grid(steps=[0])
    data["backbones"][0]["path"] = "hf:just-a-name"
    with pytest.raises(PicomamlError, match="path: backbone reference 'hf:just-a-name'"):
        from_dict(GridConfig, data)


def _write_grid(tmp_path: Path, fake_hub, **extra) -> Path:
    data = _hub_grid(steps=[0, 100])
    data["backbones"][1] = {
        "variant": "vanilla",
        "size": "tiny",
        "path": f"hf:{VANILLA}@{fake_hub.vanilla_steps[1000]}",
        "checkpoints": {s: f"hf:{VANILLA}@{c}" for s, c in fake_hub.vanilla_steps.items()},
    }
    data["sweeps"].append({"variants": ["vanilla"], "sizes": ["tiny"], "steps": "all"})
    data["finetune"] = {
        "max_train_sentences": 12,
        "max_dev_sentences": 8,
        "batch_size": 4,
        "epochs": 1,
        "window": 64,
        "device": "cpu",
    }
    data["evaluate"] = {"datasets": ["tl_trg", "tl_ugnayan", "ceb_gja"]}
    data.update(extra)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def resolving_runner(cell: Cell, cell_dir: Path, cfg: GridConfig, data_dir: Path | None) -> None:
    """Test double for fine-tune + evaluate: resolves the cell's backbone as fine-tuning does
    and records what it got."""
    resolved = resolve_backbone(cell.backbone)
    run = {"backbone": str(resolved.folder), "backbone_hub": resolved.hub, "step": resolved.step}
    (cell_dir / "results.json").write_text(json.dumps({"run": run, "datasets": {}}))


def test_grid_fetches_each_hub_checkpoint_once_before_the_cells(
    fake_hub, hub_cache, tmp_path, capsys
):
    cfg = load_grid(_write_grid(tmp_path, fake_hub))
    results = tmp_path / "results"
    summary = run_grid(cfg, results, runner=resolving_runner, progress=True)
    assert summary.failed == [] and len(summary.ok) == 6  # 2 main + 2 MAML + 2 vanilla steps
    assert "checking 5 Hub checkpoint(s)" in capsys.readouterr().err  # vanilla 1000 twice
    fetched = fake_hub.fetched_files()
    assert {Path(p).name for p in fetched} == {"config.json", "model.safetensors"}
    runs = {
        d.name: json.loads((d / "results.json").read_text())["run"]
        for d in (results / "cells").iterdir()
    }
    maml_100 = runs["sweep-maml-tiny-head-sk_snk-s0-step000100"]
    assert maml_100["backbone_hub"]["reference"] == f"hf:{MAML}/checkpoints/step_100"
    assert maml_100["backbone_hub"]["commit"] == fake_hub.maml_commit and maml_100["step"] == 100
    vanilla_0 = runs["sweep-vanilla-tiny-head-sk_snk-s0-step000000"]
    assert vanilla_0["backbone_hub"]["commit"] == fake_hub.vanilla_steps[0]
    assert Path(vanilla_0["backbone"]).is_relative_to(hub_cache)


@pytest.mark.slow
def test_grid_on_published_checkpoints_runs_records_commits_and_reports(
    fake_hub, hub_cache, fixture_data_root, tmp_path
):
    """The real cells (fine-tune + evaluate) and the report; about 15 s of CPU."""
    cfg = load_grid(_write_grid(tmp_path, fake_hub))
    results = tmp_path / "results"
    summary = run_grid(cfg, results, data_root=fixture_data_root, progress=False)
    assert summary.failed == [] and len(summary.ok) == 6  # 2 main + 2 MAML + 2 vanilla steps
    names = {Path(p).name for p in fake_hub.fetched_files()}
    assert names == {"config.json", "model.safetensors"}
    runs = {d.name: json.loads((d / "run.json").read_text()) for d in (results / "cells").iterdir()}
    maml_step = runs["sweep-maml-tiny-head-sk_snk-s0-step000100"]
    assert maml_step["backbone_requested"] == f"hf:{MAML}/checkpoints/step_100"
    assert maml_step["backbone_hub"]["commit"] == fake_hub.maml_commit
    assert maml_step["pretrain_step"] == 100
    vanilla_0 = runs["sweep-vanilla-tiny-head-sk_snk-s0-step000000"]
    assert vanilla_0["backbone_hub"]["commit"] == fake_hub.vanilla_steps[0]

    text = write_report(results, data_root=fixture_data_root).read_text()
    assert (
        f"published checkpoint hf:{MAML}/checkpoints/step_1000 (commit {fake_hub.maml_commit})"
        in text
    )
    assert "The backbones are the published checkpoints" in text
    assert "configs/study/published.yaml" in text
    assert text.count("**Paper vs ours**") >= 8
    scale = json.loads((results / "tables" / "scale.json").read_text())
    gain = next(r for r in scale["paper"]["rows"] if r["id"] == "scale.relative_gain.tiny")
    ours = scale["tables"][0]["rows"][0]["relative gain (%)"]
    assert gain["paper value"] == 38.0 and gain["ours value"] == pytest.approx(ours)
    assert gain["difference value"] == pytest.approx(ours - 38.0)
    assert any("sizes: ours tiny" in n for n in scale["paper"]["scale_notes"])


def test_grid_stops_on_a_missing_hub_step_with_one_line(
    fake_hub, hub_cache, fixture_data_root, tmp_path, capsys
):
    path = _write_grid(tmp_path, fake_hub)
    data = yaml.safe_load(path.read_text())
    data["sweeps"][0]["steps"] = [0, 7000]
    path.write_text(yaml.safe_dump(data))
    argv = ["--data-dir", str(fixture_data_root), "grid", str(path)]
    assert cli_main([*argv, "--results", str(tmp_path / "r")]) == 2
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("picomaml: error")]
    assert len(errors) == 1 and "step 7000 does not exist there" in errors[0]
    assert not any((tmp_path / "r" / "cells").glob("*/results.json"))

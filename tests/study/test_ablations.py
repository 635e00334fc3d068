"""The ablations as study axes: config errors naming the key, the cells they add, the derived
sets under the results dir (source files unchanged, few-shot halves disjoint, draws seeded),
the analyses' verdicts, and a whole grid + report on tiny backbones and the fixture root."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml

from picomaml.cli.main import main
from picomaml.data.registry import TARGETS
from picomaml.data.uner import read_iob2
from picomaml.errors import PicomamlError
from picomaml.study.analyses import Context
from picomaml.study.analyses.ablations_eval import analysis_particle_ablation
from picomaml.study.config import load_grid
from picomaml.study.derived import content_id, prepare_derived
from picomaml.study.grid import expand_cells, run_grid
from picomaml.study.records import CellRecord, Sentence, StudyData, load_study
from picomaml.study.report import write_report

ROOT = Path(__file__).resolve().parents[2]


def grid_file(tmp_path: Path, ablations: dict, **extra) -> Path:
    data = {
        "name": "abl",
        "backbones": [
            {"variant": v, "size": "tiny", "path": str(tmp_path / f"bb-{v}")}
            for v in ("vanilla", "maml")
        ],
        "regimes": ["head"],
        "sources": ["sk_snk"],
        "ablations": ablations,
        **extra,
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _empty_pool(tmp_path: Path) -> str:
    path = tmp_path / "empty.tsv"
    path.write_text("# nothing here\n")
    return str(path)


@pytest.mark.parametrize(
    ("ablations", "extra", "message"),
    [
        ({"particles": {"mode": "mask"}}, {}, "ablations.particles.mode: expected one of"),
        ({"particles": {"replacement": "si"}}, {}, "ablations.particles.replacement"),
        ({"particles": {"targets": ["sk_snk"]}}, {}, "ablations.particles.targets: unknown"),
        ({"names": {"unseen": "EMPTY"}}, {}, "ablations.names.unseen: .*the name pool is empty"),
        ({"fewshot": {"draws": 1}}, {}, "ablations.fewshot.draws: expected an integer >= 2"),
        ({"fewshot": {"ks": [0, 5, 5]}}, {}, "ablations.fewshot.ks: expected a list without"),
        ({"fewshot": {"finetune": {"extra_train": "x"}}}, {}, "ablations.fewshot.finetune"),
        ({"fewshot": {"finetune": {"epoch": 2}}}, {}, "ablations.fewshot.finetune: .*epoch"),
        ({"fewshot": {"curves": [{"regimes": ["all"]}]}}, {}, r"ablations.fewshot.curves\[0\]"),
        ({"balance": {"regimes": ["full"]}}, {}, "ablations.balance.regimes: .*not in the grid"),
        ({"balance": {}}, {"finetune": {"sampling": "balanced"}}, "must stay natural"),
        ({"shuffle": {}}, {}, "unknown config key.*ablations.shuffle"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, ablations, extra, message):
    if ablations.get("names", {}).get("unseen") == "EMPTY":
        ablations = {"names": {"unseen": _empty_pool(tmp_path)}}
    with pytest.raises(PicomamlError, match=message):
        load_grid(grid_file(tmp_path, ablations, **extra))


def test_k_larger_than_the_pool_is_an_error_naming_the_key(tmp_path, fixture_data_root, capsys):
    path = grid_file(tmp_path, {"fewshot": {"ks": [0, 5], "cap": False}})
    cfg = load_grid(path)
    with pytest.raises(PicomamlError, match=r"ablations.fewshot.ks: k = \[5\] larger than the"):
        prepare_derived(cfg, tmp_path / "res", fixture_data_root)
    assert main(["grid", str(path), "--dry-run", "--data-dir", str(fixture_data_root)]) == 2
    assert "ablations.fewshot.ks" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_cells_the_ablations_add(tmp_path):
    ablations = {
        "balance": {},
        "fewshot": {
            "ks": [0, 2, 10],
            "draws": 2,
            "curves": [
                {"regimes": ["head"], "targets": ["tl_trg", "ceb_gja"]},
                {"regimes": ["full"], "targets": ["tl_trg"]},
            ],
        },
    }
    cfg = load_grid(grid_file(tmp_path, ablations, regimes=["head", "full"]))
    cells = expand_cells(cfg, tmp_path)
    kinds = [c.kind for c in cells]
    # per backbone: head 1 + 2 targets x 2 k x 2 draws = 9, full 1 + 1 x 2 x 2 = 5
    assert kinds.count("main") == 4 and kinds.count("balanced") == 4
    assert kinds.count("fewshot") == 2 * (9 + 5)
    ids = {c.cell_id for c in cells}
    assert "balanced-maml-tiny-full-sk_snk-s0" in ids
    assert "fewshot-maml-tiny-head-sk_snk-s0-k00" in ids
    assert "fewshot-vanilla-tiny-full-sk_snk-s0-tl_trg-k10-d1" in ids
    assert "fewshot-vanilla-tiny-full-sk_snk-s0-ceb_gja-k02-d0" not in ids
    assert len(ids) == len(cells)


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "uner").rglob("*.iob2"))
    }


ALL = {
    "particles": {"mode": "replace", "replacement": "ang"},
    "names": {"seed": 3},
    "fewshot": {"ks": [0, 2, 10], "draws": 3},
}


def test_derived_sets_are_written_under_results_and_sources_untouched(tmp_path, fixture_data_root):
    before = _digests(fixture_data_root)
    cfg = load_grid(grid_file(tmp_path, ALL))
    index = prepare_derived(cfg, tmp_path / "res", fixture_data_root)
    assert _digests(fixture_data_root) == before
    assert index == json.loads((tmp_path / "res/derived/index.json").read_text())
    files = sorted((tmp_path / "res" / "derived").rglob("*.iob2"))
    # 3 particle copies, 2 pools x 3 names copies, 3 evaluation halves, 3 x 2 k x 3 draws
    assert len(files) == 3 + 6 + 3 + 18
    for f in files:
        manifest = json.loads(f.with_suffix(".json").read_text())
        assert manifest["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
        src = fixture_data_root / manifest["source"]["file"]
        assert manifest["source"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        assert f.stem.endswith("-" + content_id(manifest["source"]["sha256"], manifest["params"]))
        sentences, _ = read_iob2(f)  # the copies read back as valid UNER files
        assert all(len(s.tokens) == len(s.tags) for s in sentences)
    first = {f.name: f.read_bytes() for f in files}
    prepare_derived(cfg, tmp_path / "again", fixture_data_root)
    again = {f.name: f.read_bytes() for f in (tmp_path / "again/derived").rglob("*.iob2")}
    assert again == first  # same source, parameters and seeds: the same files


def test_fewshot_halves_are_disjoint_from_every_draw(tmp_path, fixture_data_root):
    cfg = load_grid(grid_file(tmp_path, ALL))
    index = prepare_derived(cfg, tmp_path / "res", fixture_data_root)
    assert index is not None
    for code in TARGETS:
        info = index["fewshot"]["targets"][code]
        evaluation, _ = read_iob2(tmp_path / "res" / info["eval"]["file"])
        held_ids = {s.sent_id for s in evaluation}
        held_words = {tuple(s.tokens) for s in evaluation}
        assert info["k_used"] == {"0": 0, "2": 2, "10": info["pool"]} and info["capped"] == [10]
        for k, draws in info["draws"].items():
            got = [read_iob2(tmp_path / "res" / f)[0] for f in draws.values()]
            for sents in got:
                assert len(sents) == info["k_used"][k]
                assert not {s.sent_id for s in sents} & held_ids
                assert not {tuple(s.tokens) for s in sents} & held_words
        small = {s.sent_id for s in read_iob2(tmp_path / "res" / info["draws"]["2"]["0"])[0]}
        large = {s.sent_id for s in read_iob2(tmp_path / "res" / info["draws"]["10"]["0"])[0]}
        assert small <= large  # nested draws


def _rec(variant: str, sents: dict[str, list[Sentence]]) -> CellRecord:
    return CellRecord(
        cell_id=f"{variant}-tiny-head-sk_snk-s0",
        rel=f"cells/{variant}-tiny-head-sk_snk-s0",
        kind="main",
        variant=variant,
        size="tiny",
        regime="head",
        source="sk_snk",
        seed=0,
        step=None,
        run={},
        datasets={k: {} for k in sents},
        sentences=sents,
    )


def test_particle_analysis_supports_a_model_that_needs_the_particle(tmp_path):
    """MAML finds a name only after 'si'; vanilla finds it either way: removing the particle
    costs MAML all of its PER F1 and vanilla none, so the hypothesis is supported."""
    with_p = [Sentence(["Dumating", "si", "Maria"], ["O", "O", "B-PER"], ["O", "O", "B-PER"])]
    without = [Sentence(["Dumating", "Maria"], ["O", "B-PER"], ["O", "O"])]
    found = [Sentence(["Dumating", "Maria"], ["O", "B-PER"], ["O", "B-PER"])]
    sets = {
        code: {"key": f"{code}.particles", "file": "x", "changes": {"masked_before_type": {}}}
        for code in ("tl_trg", "tl_ugnayan")
    }
    maml = _rec("maml", {k: with_p * 30 for k in ("tl_trg", "tl_ugnayan")})
    maml.sentences.update({f"{k}.particles": without * 30 for k in ("tl_trg", "tl_ugnayan")})
    vanilla = _rec("vanilla", {k: with_p * 30 for k in ("tl_trg", "tl_ugnayan")})
    vanilla.sentences.update({f"{k}.particles": found * 30 for k in ("tl_trg", "tl_ugnayan")})
    data = StudyData(tmp_path, {}, [vanilla, maml], [], [], [], {"particles": {"sets": sets,
                     "params": {"mode": "drop", "replacement": "ang"}}})  # fmt: skip
    a = analysis_particle_ablation(data, Context(tmp_path))
    assert a.unavailable is None
    diff = a.tables[1].rows[0]
    assert diff["language"] == "Tagalog"
    assert diff["difference of differences (pp) [95% CI]"] == "+100.0 [+100.0, +100.0]"
    assert diff["verdict"] == "supported"
    assert any(t.startswith("**Verdict: supported.**") for t in a.text)
    assert (tmp_path / "figures" / "a1_particles.png").is_file()


@pytest.fixture(scope="module")
def backbones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from picomaml.model import PicoConfig, PicoDecoder, save_pico

    root = tmp_path_factory.mktemp("bbs")
    for i, v in enumerate(("vanilla", "maml")):
        torch.manual_seed(i)
        config = PicoConfig(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, max_seq_len=64)
        save_pico(PicoDecoder(config), root / f"bb-{v}")
    return root


def test_grid_and_report_with_every_ablation(tmp_path, backbones, fixture_data_root):
    before = _digests(fixture_data_root)
    ablations = {
        "particles": {},
        "names": {},
        "balance": {},
        "fewshot": {"ks": [0, 2], "draws": 2, "curves": [{"regimes": ["head"]}]},
    }
    extra = {
        "finetune": {"epochs": 1, "batch_size": 8, "device": "cpu"},
        "evaluate": {"datasets": list(TARGETS)},
        "analysis": {"n_resamples": 50},
    }
    cfg = load_grid(grid_file(backbones, ablations, **extra))
    res = tmp_path / "res"
    summary = run_grid(cfg, res, data_root=fixture_data_root, progress=False)
    # 2 main + 2 balanced + 2 x (1 + 3 targets x 1 k x 2 draws) few-shot
    assert summary.total == 18 and not summary.failed, summary.failed
    assert _digests(fixture_data_root) == before
    main_results = json.loads((res / "cells/maml-tiny-head-sk_snk-s0/results.json").read_text())
    assert {"tl_trg.particles", "tl_trg.names-frequent", "tl_trg.names-unseen"} <= set(
        main_results["datasets"]
    )
    assert (res / "cells/balanced-maml-tiny-head-sk_snk-s0/sampling.json").is_file()
    index = json.loads((res / "derived/index.json").read_text())
    for cell in (res / "cells").glob("fewshot-*-d*"):
        run = json.loads((cell / "run.json").read_text())
        target = cell.name.split("-s0-")[1].split("-k")[0]
        held, _ = read_iob2(res / index["fewshot"]["targets"][target]["eval"]["file"])
        trained = run["data"]["train"]["extra_train"]["sent_ids"]
        assert trained and not set(trained) & {s.sent_id for s in held}
        scored = json.loads((cell / "results.json").read_text())["datasets"]
        assert list(scored) == [f"{target}.eval-half"]
    report = write_report(res, data_root=fixture_data_root).read_text()
    for title, figure in (
        ("Ablation: particle masking", "a1_particles.png"),
        ("Ablation: balanced resampling", "a2_balance.png"),
        ("Ablation: controlled name substitution", "a3_names.png"),
        ("Ablation: few-shot target curves", "a4_fewshot.png"),
    ):
        section = report.split(title, 1)[1].split("\n### ", 1)[0]
        assert f"figures/{figure}" in section and (res / "figures" / figure).is_file()
        assert "**Paper's hypothesis" in section
        assert any(
            f"**Verdict: {v}.**" in section
            for v in ("supported", "not supported", "cannot tell at this scale")
        )
    assert "too few to read" in report  # the fixture targets hold a handful of PER spans
    assert len(load_study(res).of_kind("fewshot")) == 14
    again = run_grid(cfg, res, data_root=fixture_data_root, progress=False)
    assert len(again.skipped) == 18  # the grid copy with its ablations reads back equal


@pytest.mark.parametrize("name", ["ablations", "published-ablations"])
def test_shipped_ablation_configs_validate_offline(name, capsys, fixture_data_root, tmp_path):
    cfg = load_grid(ROOT / f"configs/study/{name}.yaml")
    assert cfg.ablations.particles and cfg.ablations.names and cfg.ablations.balance
    fs = cfg.ablations.fewshot
    assert fs.ks == [0, 5, 10, 25, 50] and fs.draws >= 5
    args = ["grid", str(ROOT / f"configs/study/{name}.yaml"), "--dry-run"]
    args += ["--results", str(tmp_path / "r"), "--data-dir", str(fixture_data_root)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "dry run: the config is valid" in out and not (tmp_path / "r").exists()
    if name == "published-ablations":
        assert all(b.is_hub for b in cfg.backbones) and len(cfg.backbones) == 8
        assert "published checkpoint (parsed" in out


@pytest.mark.slow
def test_ablations_on_published_checkpoints(fake_hub, hub_cache, fixture_data_root, tmp_path):
    """The same ablations on `hf:` backbones served by the fake Hub (real cells)."""
    from tests.fixtures.fakehub import MAML, VANILLA

    data = {
        "name": "hub-abl",
        "backbones": [
            {"variant": "maml", "size": "tiny", "path": f"hf:{MAML}/checkpoints/step_1000"},
            {
                "variant": "vanilla",
                "size": "tiny",
                "path": f"hf:{VANILLA}@{fake_hub.vanilla_steps[1000]}",
            },
        ],
        "regimes": ["head"],
        "sources": ["sk_snk"],
        "finetune": {"max_train_sentences": 12, "epochs": 1, "window": 64, "device": "cpu"},
        "evaluate": {"datasets": list(TARGETS)},
        "analysis": {"n_resamples": 50},
        "ablations": {
            "particles": {},
            "names": {},
            "balance": {},
            "fewshot": {
                "ks": [0, 2],
                "draws": 2,
                "curves": [{"regimes": ["head"], "targets": ["tl_trg"]}],
            },
        },
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(data))
    res = tmp_path / "res"
    summary = run_grid(load_grid(path), res, data_root=fixture_data_root, progress=False)
    assert summary.total == 10 and not summary.failed, summary.failed  # 2 + 2 + 2 x (1 + 2)
    run = json.loads(
        (res / "cells/fewshot-maml-tiny-head-sk_snk-s0-tl_trg-k02-d1/run.json").read_text()
    )
    assert run["backbone_hub"]["commit"] == fake_hub.maml_commit
    assert run["data"]["train"]["extra_train"]["sentences"] == 2
    text = write_report(res, data_root=fixture_data_root).read_text()
    assert text.count("**Paper's hypothesis") == 4

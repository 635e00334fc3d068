"""Pretraining config: presets load, vanilla/MAML differ only in meta.enabled, keys validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from picomaml.config import to_dict
from picomaml.errors import PicomamlError
from picomaml.pretrain.config import (
    PretrainConfig,
    load_pretrain_config,
)

PRESETS = Path(__file__).resolve().parents[2] / "configs" / "pretrain"
TIERS = ["tiny", "small", "medium", "large"]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_preset_loads(path: Path) -> None:
    cfg = load_pretrain_config(path)
    assert isinstance(cfg, PretrainConfig)
    assert cfg.training.accumulation_steps(1) >= 1


@pytest.mark.parametrize("size", TIERS + ["demo"])
def test_vanilla_and_maml_differ_only_in_meta_enabled(size: str) -> None:
    name = "demo-{}" if size == "demo" else "{}-" + size
    vanilla = _flat(to_dict(load_pretrain_config(PRESETS / f"{name.format('vanilla')}.yaml")))
    maml = _flat(to_dict(load_pretrain_config(PRESETS / f"{name.format('maml')}.yaml")))
    diff = {k for k in vanilla if vanilla[k] != maml[k]}
    assert diff == {"meta.enabled"}
    assert maml["meta.enabled"] is True and vanilla["meta.enabled"] is False


@pytest.mark.parametrize("size", TIERS)
def test_presets_match_the_paper(size: str) -> None:
    cfg = load_pretrain_config(PRESETS / f"maml-{size}.yaml")
    t, m = cfg.training, cfg.meta
    assert cfg.model.size == size and cfg.data.seq_len == 2048
    assert t.batch_size == (1024 if size == "tiny" else 2048)
    assert (t.lr, t.warmup_steps, t.max_steps, t.schedule) == (3e-4, 2500, 6000, "cosine")
    assert t.optimizer == "adamw" and t.grad_clip == 1.0 and t.precision == "auto"
    assert cfg.checkpointing.every == 100
    assert (m.rho, m.ways, m.shots, m.queries, m.window) == (0.5, 32, 4, 4, 128)
    assert (m.inner_steps, m.inner_lr) == (10, 1e-3)
    assert (m.head_layers, m.head_hidden, m.head_dropout, m.head_init) == (4, 128, 0.1, "xavier")
    assert cfg.dynamics.layers == ["attention.v_proj", "attention.o_proj", "swiglu.w_2"]


def test_unknown_key_error_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("meta:\n  wayz: 8\n", encoding="utf-8")
    with pytest.raises(PicomamlError, match=r"meta\.wayz") as info:
        load_pretrain_config(bad)
    assert str(bad) in str(info.value)
    with pytest.raises(PicomamlError, match=r"training\.lrr"):
        load_pretrain_config(None, ["training.lrr=1"])


def test_overrides_and_wrong_types() -> None:
    cfg = load_pretrain_config(PRESETS / "demo-maml.yaml", ["meta.ways=4", "training.seed=7"])
    assert cfg.meta.ways == 4 and cfg.training.seed == 7
    with pytest.raises(PicomamlError, match=r"meta\.ways"):
        load_pretrain_config(None, ["meta.ways=many"])


def test_inconsistent_values_are_errors_naming_the_key() -> None:
    with pytest.raises(PicomamlError, match=r"training\.batch_size"):
        load_pretrain_config(None, ["training.batch_size=10", "training.micro_batch_size=4"])
    with pytest.raises(PicomamlError, match=r"meta\.rho"):
        load_pretrain_config(None, ["meta.rho=1.5"])
    with pytest.raises(PicomamlError, match=r"meta\.window"):
        load_pretrain_config(None, ["meta.enabled=true", "data.seq_len=64", "meta.window=128"])


def test_accumulation_steps_follow_world_size() -> None:
    t = load_pretrain_config(PRESETS / "maml-tiny.yaml").training
    assert t.accumulation_steps(1) * t.micro_batch_size == 1024
    assert t.accumulation_steps(4) * t.micro_batch_size * 4 == 1024
    with pytest.raises(PicomamlError, match="world_size=3"):
        t.accumulation_steps(3)


def test_precision_auto() -> None:
    t = PretrainConfig().training
    assert t.resolved_precision(True) == "bf16-mixed"
    assert t.resolved_precision(False) == "32-true"


def test_path_rule(tmp_path: Path, fixture_data_root: Path) -> None:
    root = fixture_data_root
    cfg = load_pretrain_config(PRESETS / "demo-maml.yaml")
    corpus = cfg.data.corpus_path(root)
    assert corpus == (root / "corpus/english-mini/train.jsonl.gz").resolve()
    assert Path(corpus).is_file()
    hub = load_pretrain_config(None, ["data.kind=hub", "data.corpus=pico-lm/pretokenized-dolma"])
    assert hub.data.corpus_path(root) == "pico-lm/pretokenized-dolma"


def test_model_section_builds_the_pico_config() -> None:
    cfg = load_pretrain_config(PRESETS / "demo-maml.yaml")
    pico = cfg.model.pico_config(cfg.data.seq_len)
    assert (pico.d_model, pico.n_layers, pico.max_seq_len) == (96, 12, 128)
    small = load_pretrain_config(None, ["model.size=small", "model.n_layers=2"]).model
    assert (small.pico_config().d_model, small.pico_config().n_layers) == (384, 2)


def test_model_section_width_override() -> None:
    """An explicit ``model.d_model`` replaces the tier's width (it used to be a duplicate kwarg)."""
    section = load_pretrain_config(None, ["model.d_model=48", "model.n_heads=4"]).model
    pico = section.pico_config(64)
    assert (pico.d_model, pico.n_heads, pico.max_seq_len) == (48, 4, 64)

"""Typed config loader: unknown keys, wrong types and bad overrides are errors naming the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from picomaml.config import apply_overrides, from_dict, load_config, save_config, to_dict
from picomaml.errors import PicomamlError


@dataclass
class Inner:
    lr: float = 1e-3
    steps: int = 10
    mode: Literal["a", "b"] = "a"


@dataclass
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    tags: list[str] = field(default_factory=list)
    path: Path | None = None


def test_defaults_and_nested_values() -> None:
    cfg = from_dict(Outer, {"inner": {"lr": 1, "steps": 3}, "tags": ["p"]})
    assert cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.steps == 3 and cfg.tags == ["p"] and cfg.path is None


def test_unknown_key_is_named() -> None:
    with pytest.raises(PicomamlError, match=r"inner\.stpes"):
        from_dict(Outer, {"inner": {"stpes": 3}})


def test_wrong_type_is_named() -> None:
    with pytest.raises(PicomamlError, match=r"inner\.steps: expected an integer"):
        from_dict(Outer, {"inner": {"steps": "many"}})
    with pytest.raises(PicomamlError, match=r"inner\.mode: expected one of"):
        from_dict(Outer, {"inner": {"mode": "c"}})
    with pytest.raises(PicomamlError, match=r"inner\.steps"):
        from_dict(Outer, {"inner": {"steps": True}})


def test_overrides_parse_yaml_values() -> None:
    data = apply_overrides({"inner": {"lr": 0.1}}, ["inner.steps=7", "name=run", "tags=[a, b]"])
    cfg = from_dict(Outer, data)
    assert (cfg.inner.steps, cfg.inner.lr, cfg.name, cfg.tags) == (7, 0.1, "run", ["a", "b"])
    with pytest.raises(PicomamlError, match="section.key=value"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(PicomamlError, match="not a section"):
        apply_overrides({"name": "x"}, ["name.sub=1"])


def test_exponent_without_dot_is_a_float(tmp_path: Path) -> None:
    """YAML 1.1 would read 1e-3 as a string; our loader reads it as the number users mean."""
    cfg = from_dict(Outer, apply_overrides({}, ["inner.lr=1e-3"]))
    assert cfg.inner.lr == pytest.approx(1e-3)
    path = tmp_path / "c.yaml"
    path.write_text("inner:\n  lr: 3e-4\nname: 1e3x\n", encoding="utf-8")
    cfg = load_config(Outer, path)
    assert cfg.inner.lr == pytest.approx(3e-4) and cfg.name == "1e3x"


def test_file_roundtrip_and_errors_name_file(tmp_path: Path) -> None:
    cfg = from_dict(Outer, {"name": "n", "path": "some/where", "inner": {"mode": "b"}})
    target = tmp_path / "c.yaml"
    save_config(cfg, target)
    assert load_config(Outer, target) == cfg
    assert to_dict(cfg)["path"] == "some/where"
    bad = tmp_path / "bad.yaml"
    bad.write_text("inner:\n  lr: 1\n  typo: 2\n")
    with pytest.raises(PicomamlError, match=r"bad\.yaml.*inner\.typo"):
        load_config(Outer, bad)
    with pytest.raises(PicomamlError, match="not found"):
        load_config(Outer, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(PicomamlError, match="mapping"):
        load_config(Outer, tmp_path / "list.yaml")

"""Typed config loader: unknown keys, wrong types and bad overrides are errors naming the key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from picomaml.config import (
    MAX_CONFIG_BYTES,
    apply_overrides,
    from_dict,
    load_config,
    load_yaml,
    quote,
    save_config,
    to_dict,
)
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


# --- issue 22: numbers, seeds and YAML limits ----------------------------------------------


@dataclass
class Seeded:
    seed: int = 0
    bootstrap_seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0])
    steps: int = 0
    lr: float = 1e-3
    lrs: tuple[float, float] = (0.1, 0.2)
    scale: float | None = None
    ceiling: float = field(default=1.0, metadata={"finite": False})


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e400"])
@pytest.mark.parametrize("key", ["lr", "lrs", "scale"])
def test_every_float_must_be_finite(key: str, value: str) -> None:
    text = f"[{value}, 1]" if key == "lrs" else value
    with pytest.raises(PicomamlError, match=rf"^{key}(\[0\])?: expected a finite number"):
        from_dict(Seeded, apply_overrides({}, [f"{key}={text}"]))


def test_a_field_may_allow_infinity() -> None:
    assert from_dict(Seeded, apply_overrides({}, ["ceiling=.inf"])).ceiling == float("inf")


@pytest.mark.parametrize("key", ["seed", "bootstrap_seed", "seeds"])
@pytest.mark.parametrize("value", [-1, 2**32])
def test_seeds_lie_in_numpys_range(key: str, value: int) -> None:
    data = {key: [0, value] if key == "seeds" else value}
    with pytest.raises(PicomamlError, match=r"expected a seed in 0\.\.4294967295"):
        from_dict(Seeded, data)
    ok = {key: [0, 2**32 - 1] if key == "seeds" else 2**32 - 1}
    from_dict(Seeded, ok)
    assert from_dict(Seeded, {"steps": -1}).steps == -1  # only seeds are range-checked here


def test_duplicate_key_names_the_key_and_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("name: x\ninner:\n  lr: 0.1\n  steps: 3\n  lr: 0.5\n", encoding="utf-8")
    with pytest.raises(PicomamlError) as err:
        load_config(Outer, path)
    assert str(err.value) == (
        f"{path}:5:3: not valid YAML (duplicate key 'lr' (first on line 3, again on line 5; "
        "YAML would silently keep the last))"
    )
    with pytest.raises(PicomamlError, match=r"override 'inner=\{a: 1, a: 2\}'.*duplicate key 'a'"):
        apply_overrides({}, ["inner={a: 1, a: 2}"])


def test_merge_keys_still_override(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {lr: 0.1, steps: 3}\ninner:\n  <<: *b\n  lr: 0.5\n")
    data = load_yaml(path)
    assert data["inner"] == {"lr": 0.5, "steps": 3}


def _bomb(levels: int) -> str:
    """``name: [level 0, ..., level n-1]`` where level i holds 9 aliases of level i - 1."""
    items = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        items.append(f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "name: [" + ", ".join(items) + "]\n"


def test_alias_bomb_is_refused_before_it_is_built(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb(9), encoding="utf-8")  # 9**9 = 387 million "lol"s when expanded
    with pytest.raises(PicomamlError, match="aliases expand the document beyond") as err:
        load_config(Outer, path)
    assert len(str(err.value)) < 500
    small = tmp_path / "small.yaml"
    small.write_text(_bomb(3), encoding="utf-8")  # 729 items: allowed, and the error is short
    with pytest.raises(PicomamlError, match=r"^.*name: expected a string, got \[\[") as err:
        load_config(Outer, small)
    assert len(str(err.value)) < 500
    (tmp_path / "loop.yaml").write_text("name: &a [*a]\n")
    with pytest.raises(PicomamlError, match="an alias refers to a node that contains it"):
        load_config(Outer, tmp_path / "loop.yaml")


def test_config_size_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("name: " + "x" * MAX_CONFIG_BYTES + "\n", encoding="utf-8")
    with pytest.raises(PicomamlError, match=r"big\.yaml: 1,048,58\d bytes; a config is at most"):
        load_config(Outer, path)
    with pytest.raises(PicomamlError, match="a config is at most"):
        apply_overrides({}, ["name=" + "x" * (MAX_CONFIG_BYTES + 1)])


def test_quoted_values_are_short() -> None:
    with pytest.raises(PicomamlError) as err:
        from_dict(Outer, {"name": ["x" * 10**6]})
    assert len(str(err.value)) < 400
    assert len(quote("y" * 1000)) < 250 and len(quote([[["z"] * 50] * 50] * 50)) < 250

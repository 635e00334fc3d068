"""docs/config.md is generated from the config dataclasses and must match them: every key
has a description, and the checked-in file is what the generator writes now."""

from __future__ import annotations

import dataclasses
import runpy
from pathlib import Path

import pytest

from picomaml import config_docs
from picomaml.config_docs import field_docstrings, missing_descriptions, render
from picomaml.pretrain.config import MetaSection

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "config.md"


def test_every_field_has_a_description() -> None:
    assert missing_descriptions() == []


def test_docs_config_md_is_up_to_date() -> None:
    """Fails after a key, default or docstring changes until the file is regenerated with
    ``python scripts/gen_config_docs.py``."""
    assert DOC.read_text(encoding="utf-8") == render()


def test_the_reference_names_keys_users_look_up() -> None:
    """Rows start with key, type, default and allowed values (``|`` escaped in a cell)."""
    lines = render().splitlines()
    for start in (
        r"| `meta.head_lr` | `float \| None` | `null` |  | Outer learning rate",
        "| `meta.branch_draw` | `Literal['per_microbatch', 'per_step']` | `'per_microbatch'` "
        "| `per_microbatch`, `per_step` | Draw",
        "| `training.lr` | `float` | `0.0003` |  | Peak",
        "| `regime` | `Regime` | `'head'` | `head`, `full` | head:",
        "| `backbones[].path` | `str` | required |  | Run dir",
        "| `ablations.fewshot.curves[].regimes` | `list[Regime]` | required |",
    ):
        assert [line for line in lines if line.startswith(start)], start
    meta_rows = [line for line in lines if line.startswith("| `meta.")]
    assert len(meta_rows) == len(dataclasses.fields(MetaSection))


def test_a_field_without_a_docstring_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass
    class Section:
        documented: int = 1
        """Has one."""
        bare: int = 2

    assert field_docstrings(Section) == {"documented": "Has one."}
    monkeypatch.setattr(config_docs, "ROOTS", (("t", Section, "nowhere"),))
    assert missing_descriptions() == ["bare"]


def test_the_script_checks_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    """``scripts/gen_config_docs.py --check``, run in-process (a subprocess would pay the
    torch import again)."""
    script = runpy.run_path(str(ROOT / "scripts" / "gen_config_docs.py"))
    assert script["main"](["--check"]) == 0
    assert capsys.readouterr().out.strip().endswith("config.md: up to date")

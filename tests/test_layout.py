"""Checkpoint folders and the ``latest`` pointer: the rules every stage shares."""

from __future__ import annotations

import pytest

from picomaml import layout
from picomaml.errors import PicomamlError


def test_step_names_and_folders(tmp_path) -> None:
    assert layout.step_name(12) == "step_12" and layout.parse_step("step_12") == 12
    assert layout.parse_step("step_x") is None and layout.parse_step("step_1.tmp") is None
    for step in (10, 2):
        (layout.step_dir(tmp_path, step) / "sub").mkdir(parents=True)
    (tmp_path / "step_2" / layout.PICO_WEIGHTS).write_text("w")
    (tmp_path / "step_3.tmp").mkdir()
    (tmp_path / "step_4").write_text("a file, not a folder")
    assert layout.step_dirs(tmp_path) == [(2, tmp_path / "step_2"), (10, tmp_path / "step_10")]
    assert layout.step_dirs(tmp_path, require=layout.PICO_WEIGHTS) == [(2, tmp_path / "step_2")]
    assert layout.step_dirs(tmp_path / "missing") == []


def test_latest_pointer(tmp_path) -> None:
    root = tmp_path / layout.CHECKPOINTS
    assert layout.read_latest(root) is None and layout.latest_step_of_run(tmp_path) is None
    root.mkdir()
    layout.write_latest(root, root / "step_7")
    assert (root / "latest").read_text() == "step_7\n"
    assert layout.read_latest(root) == "step_7" and layout.latest_step_of_run(tmp_path) == 7
    (root / "latest").write_text("best\n")
    with pytest.raises(PicomamlError, match=r"latest: expected 'step_N', got 'best'"):
        layout.read_latest(root)


def test_pretrain_run_dir(tmp_path) -> None:
    (tmp_path / layout.PRETRAIN_CONFIG).write_text("meta: {}\n")
    step = tmp_path / layout.CHECKPOINTS / "step_5"
    step.mkdir(parents=True)
    assert layout.pretrain_run_dir(tmp_path) == tmp_path
    assert layout.pretrain_run_dir(step) == tmp_path
    assert layout.pretrain_run_dir(tmp_path / "elsewhere") is None

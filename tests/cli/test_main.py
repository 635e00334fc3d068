"""The CLI front door: help lists every stage and user errors print one line, exit 2."""

from __future__ import annotations

import pytest

from picomaml.cli.main import main


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ["data", "model", "pretrain", "finetune", "evaluate", "tag", "grid", "report"]:
        assert command in out


def test_missing_data_dir_is_a_clear_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the real entry point: exit 2 and one line naming the flag and the folder."""
    missing = tmp_path / "nope"
    assert main(["--data-dir", str(missing), "data", "stats", "tl_trg", "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert err == f"picomaml: error: data directory from --data-dir does not exist: {missing}\n"

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


def test_missing_data_dir_is_a_clear_error(tmp_path) -> None:
    from picomaml.data.paths import resolve_data_dir
    from picomaml.errors import PicomamlError

    with pytest.raises(PicomamlError, match="does not exist"):
        resolve_data_dir(tmp_path / "nope")

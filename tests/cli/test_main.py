"""The CLI front door: help lists every stage and user errors print one line, exit 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from picomaml.cli.main import main
from picomaml.errors import PicomamlError

COMMANDS = [
    "data",
    "model",
    "pretrain",
    "probe",
    "finetune",
    "evaluate",
    "tag",
    "push",
    "bench",
    "grid",
    "report",
    "demo",
]


def test_help_lists_every_command_once_with_its_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command table of ``--help``: exactly these commands, in this order, each with its
    one-line summary (a dropped ``register`` or a command listed twice fails)."""
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    table = out.split("  COMMAND\n", 1)[1].split("\noptions:", 1)[0]
    # A command starts a row at four spaces; wrapped summaries are indented further.
    rows = re.findall(r"^    (\S+) +(\S.*)$", table, re.M)
    assert [name for name, _ in rows] == COMMANDS
    summaries = dict(rows)
    assert summaries["tag"] == "tag text with a fine-tuned run"
    assert summaries["grid"].startswith("run an experiment grid")


def test_missing_data_dir_is_a_clear_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the real entry point: exit 2 and one line naming the flag and the folder."""
    missing = tmp_path / "nope"
    assert main(["--data-dir", str(missing), "data", "stats", "tl_trg", "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert err == f"picomaml: error: data directory from --data-dir does not exist: {missing}\n"


# --- issue 22 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,message",
    [
        (["grid", "g.yaml", "--workers", "0"], "--workers: expected an integer 1..256, got 0"),
        (["grid", "g.yaml", "--workers", "1e3"], "--workers: expected an integer, got '1e3'"),
        (["pretrain", "--config", "c.yaml", "--stop-at-step", "-5"], "--stop-at-step: expected an"),
        (["finetune", "--out", "x", "--seed", "-1"], "--seed: expected an integer 0..4294967295"),
        (["evaluate", "r", "--n-resamples", "0"], "--n-resamples: expected an integer 1..1000000"),
        (["bench", "tag", "--lines", "0"], "--lines: expected an integer >= 1, got 0"),
    ],
)
def test_integer_flags_are_range_checked_in_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"picomaml: error: {message}") and err.count("\n") == 1


def test_error_lines_are_capped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import picomaml.cli.main as cli

    def huge(argv: list[str] | None) -> int:
        raise PicomamlError("bad value " + "x" * 10_000_000)

    monkeypatch.setattr(cli, "_dispatch", huge)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert len(err) < 2100 and err.endswith("... (9,998,010 more characters cut)\n")


def test_a_closed_pipe_ends_the_command_quietly(tiny_ner_run: Path, tmp_path: Path) -> None:
    """``picomaml tag RUN < lines | head -1``: exit 141 (as SIGPIPE), nothing on stderr."""
    lines = tmp_path / "lines.txt"
    lines.write_text("Pumunta si Maria sa Cebu kahapon kasama si Juan dela Cruz .\n" * 3000)
    with lines.open() as stdin:
        proc = subprocess.Popen(
            [sys.executable, "-m", "picomaml.cli.main", "tag", str(tiny_ner_run)],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stdout.readline()
        proc.stdout.close()
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and b"rror" not in err and b"Traceback" not in err, err

"""Running the CLI in tests: in-process with the exit code and captured output, and the
one-line error a fault must end in (shared by the CLI's fault and argument tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from picomaml.cli.main import main as cli_main


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run the CLI in-process: exit code, stdout, stderr."""
    code = cli_main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def one_line_error(stderr: str) -> str:
    """The single ``picomaml: error: ...`` line, asserting that nothing else was printed."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("picomaml: error: "), stderr
    return lines[0]

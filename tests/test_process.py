"""SIGTERM as an orderly stop, and workers that die with their parent (issue 22)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import picomaml.cli.main as cli
from picomaml.process import EXIT_TERMINATED


def test_sigterm_ends_the_cli_with_143_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cleaned = []

    def command(argv: list[str] | None) -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
            return 0
        finally:
            cleaned.append(True)  # clean-up runs as for Ctrl-C

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli, "_dispatch", command)
    assert cli.main([]) == EXIT_TERMINATED == 143
    assert capsys.readouterr().err == "picomaml: terminated (SIGTERM)\n"
    assert cleaned == [True] and signal.getsignal(signal.SIGTERM) is before


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for a reaper counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


_CHILD = """
import os, sys, time
from picomaml.process import setup_worker
setup_worker(int(sys.argv[1]))
print(os.getpid(), flush=True)
time.sleep(60)
"""
_PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], str(__import__("os").getpid())])
time.sleep(60)
"""


def test_a_worker_dies_with_its_parent_even_after_sigkill() -> None:
    # The parent starts the worker and prints nothing; the worker prints its PID.
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, _CHILD], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait(timeout=10)
    for _ in range(100):
        if not alive(child_pid):
            return
        time.sleep(0.05)
    os.kill(child_pid, signal.SIGKILL)
    pytest.fail("the worker outlived its parent")


def test_terminated_survives_a_round_trip_to_the_parent() -> None:
    """A grid worker sends it back through a pipe; failing to unpickle it broke the pool,
    which then killed the other workers in the middle of their clean-up."""
    import pickle

    from picomaml.process import Terminated

    again = pickle.loads(pickle.dumps(Terminated()))
    assert isinstance(again, Terminated) and again.code == 143


def test_after_a_handled_sigterm_the_process_starts_afresh(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from picomaml.process import terminating

    def command(argv: list[str] | None) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
        return 0

    monkeypatch.setattr(cli, "_dispatch", command)
    assert cli.main([]) == 143
    assert not terminating()  # a grid started next in this process would refuse every cell
    monkeypatch.setattr(cli, "_dispatch", lambda argv: 0)
    assert cli.main([]) == 0

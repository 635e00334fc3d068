"""One writer per folder (issue 22): a second writer fails at once naming the folder and the
PID, a dead holder never blocks, and the lock is re-entrant within a process."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from picomaml.errors import PicomamlError
from picomaml.layout import LOCK
from picomaml.locks import FolderBusy, folder_lock, holds_lock
from tests.fixtures.holder import held_elsewhere


def test_second_writer_fails_at_once_naming_folder_and_pid(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with held_elsewhere(run, "finetune") as holder:
        start = time.perf_counter()
        with pytest.raises(FolderBusy) as err, folder_lock(run, "evaluate"):
            pass
        assert time.perf_counter() - start < 1.0
        assert str(err.value) == (
            f"{run} is in use by another picomaml process (PID {holder.pid}, finetune); "
            "wait for it to end or use another directory"
        )
    with folder_lock(run):  # released when the holder ends
        assert holds_lock(run)


def test_a_killed_holder_never_blocks(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with held_elsewhere(run) as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        with folder_lock(run, "evaluate"):
            assert (run / LOCK).read_text() == f"{os.getpid()} evaluate\n"


def test_reentrant_and_tidy(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    with folder_lock(out, "finetune"):
        with folder_lock(out, "evaluate"):  # the grid's cell, then finetune inside it
            assert (out / LOCK).is_file()
        assert holds_lock(out)
    assert not holds_lock(out)
    assert not (tmp_path / "a").exists()  # created by the lock, left empty: removed again
    out.mkdir(parents=True)
    (out / "kept.txt").write_text("x")
    with folder_lock(out):
        pass
    assert sorted(p.name for p in out.iterdir()) == ["kept.txt"]  # no lock file left behind
    (tmp_path / "file").write_text("x")
    with (
        pytest.raises(PicomamlError, match="exists and is not a directory"),
        folder_lock(tmp_path / "file"),
    ):
        pass

"""One writer per folder: an advisory lock on ``FOLDER/.picomaml.lock``.

Why: two commands writing one run dir at once interleave their files (the config of one
beside the weights of the other), and two ``evaluate`` processes each rewrite
``results.json`` from what they read before, so the last writer silently drops the
other's scores. Every command that writes a run dir or a results dir (pretrain,
finetune, evaluate, each grid cell, report) holds this lock while it writes.

* A second writer fails at once (:class:`FolderBusy`, one line naming the folder and the
  PID that holds it); nothing waits.
* The lock is ``flock`` on an open file (``msvcrt.locking`` on Windows): the operating
  system releases it when its process ends, however it ends, so a lock left by a killed
  process never blocks. The PID written into the file is only for the message.
* Re-entrant within a process: the grid's cell runner locks the cell, then calls
  ``finetune`` and ``evaluate``, which lock the same folder again.
* The lock file exists only while the lock is held. A folder the lock itself created is
  removed again on release when it is empty, so a command that fails on bad input leaves
  no empty output folder.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from picomaml.errors import PicomamlError
from picomaml.layout import LOCK

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

#: Locks this process holds: real path of the folder -> [file descriptor, depth].
_HELD: dict[str, list[int]] = {}


class FolderBusy(PicomamlError):
    """Another process holds the folder's lock."""


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:  # pragma: no cover - Windows
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def holder(folder: str | Path) -> str:
    """What the lock file of ``folder`` says about its holder (``PID 123, finetune``)."""
    path = Path(folder) / LOCK
    text = ""
    for _ in range(20):  # the holder writes its PID just after it takes the lock
        try:
            text = path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        if text:
            break
        time.sleep(0.01)
    pid, _, what = text.partition(" ")
    if not pid.isdigit():
        return "PID unknown"
    return f"PID {pid}, {what}" if what else f"PID {pid}"


def _missing_parents(folder: Path) -> list[Path]:
    """``folder`` and its missing ancestors, deepest first (the ones mkdir will create)."""
    out = []
    for p in (folder, *folder.parents):
        if p.exists():
            break
        out.append(p)
    return out


def _open_locked(folder: Path, what: str) -> int | None:
    """An open descriptor of ``folder/.picomaml.lock`` holding the lock; None when busy."""
    path = folder / LOCK
    for _ in range(5):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if not _try_lock(fd):
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file its last holder removed between our open and our lock
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {what}\n".encode())
            return fd
        os.close(fd)
    return None


@contextmanager
def folder_lock(folder: str | Path, what: str = "picomaml") -> Iterator[Path]:
    """Hold the write lock of ``folder`` (created when missing) for the block.

    ``what`` names the command in the lock file (shown to a second writer). Raises
    :class:`FolderBusy` at once when another process holds it, and
    :class:`PicomamlError` when ``folder`` exists but is not a directory.
    """
    folder = Path(folder)
    key = os.path.realpath(folder)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield folder
        finally:
            _HELD[key][1] -= 1
        return
    if folder.exists() and not folder.is_dir():
        raise PicomamlError(f"{folder} exists and is not a directory; move it away")
    created = _missing_parents(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        fd = _open_locked(folder, what)
    except BaseException:
        _remove_empty(created)
        raise
    if fd is None:
        _remove_empty(created)
        raise FolderBusy(
            f"{folder} is in use by another picomaml process ({holder(folder)}); wait for "
            "it to end or use another directory"
        )
    _HELD[key] = [fd, 1]
    try:
        yield folder
    finally:
        del _HELD[key]
        try:
            # Removed while still held: a process that opened the old file finds on locking
            # that it is no longer the lock file and tries again (see _open_locked).
            with contextlib.suppress(OSError):
                (folder / LOCK).unlink()
            _remove_empty(created)
        finally:
            os.close(fd)


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders this lock created (deepest first) while they are empty."""
    for p in created:
        try:
            p.rmdir()
        except OSError:
            return


def holds_lock(folder: str | Path) -> bool:
    """Whether this process holds the lock of ``folder``."""
    return os.path.realpath(folder) in _HELD


__all__ = ["FolderBusy", "folder_lock", "holder", "holds_lock"]

"""Simulated file-system faults for the fault-path tests (issue 10).

``full_disk`` patches Python's ``open`` so that files whose path matches accept a number of
bytes and then fail the way a full disk does: the bytes that fit are written, then ``write``
raises ``ENOSPC`` (with no file name, as a real failed ``write`` on an open file). Every
Python-level writer goes through ``open`` (json, text, gzip, numpy, PIL for matplotlib's PNGs).

Writers in C++ or Rust (``torch.save``, safetensors) open files themselves, out of Python's
reach; ``file_size_limit`` sets a real per-process limit (``RLIMIT_FSIZE``, POSIX), so the
kernel cuts their write short and fails it with ``EFBIG``, as a full disk would mid-file.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

WRITE_MODES = set("wax+")


def _name_of(file: Any) -> str:
    """The path behind ``open``'s first argument (a path, or a descriptor from ``os.open``)."""
    if isinstance(file, int):
        try:
            return os.readlink(f"/proc/self/fd/{file}")
        except OSError:
            return ""
    return os.fspath(file) if isinstance(file, (str, bytes, os.PathLike)) else ""


class _Disk:
    def __init__(self, match: str, room: int, fail_open: int | None) -> None:
        self.match, self.room, self.fail_open = match, room, fail_open
        self.failures: list[str] = []


class _FullFile:
    """A file object whose ``write`` runs out of room."""

    def __init__(self, fh: Any, disk: _Disk, name: str) -> None:
        self._fh, self._disk, self._name = fh, disk, name

    def write(self, data: Any) -> int:
        text = isinstance(data, str)
        size = len(data.encode("utf-8")) if text else memoryview(data).nbytes
        if size <= self._disk.room:
            self._disk.room -= size
            return self._fh.write(data)
        fits = self._disk.room
        if fits:
            part = data.encode("utf-8")[:fits].decode("utf-8", "ignore") if text else data[:fits]
            self._fh.write(part)
            self._fh.flush()
        self._disk.room = 0
        self._disk.failures.append(self._name)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self) -> _FullFile:
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._fh.__exit__(*exc)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._fh)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


@contextlib.contextmanager
def full_disk(
    monkeypatch: pytest.MonkeyPatch, match: str, room: int = 0, fail_open: int | None = None
) -> Iterator[_Disk]:
    """Files opened for writing whose name contains ``match`` share ``room`` bytes; the write
    that does not fit fails with ENOSPC. ``fail_open``: instead, opening them fails with this
    errno (``errno.EROFS`` for a read-only file system, ``errno.EACCES``)."""
    disk = _Disk(match, room, fail_open)
    real_open = builtins.open

    def patched(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        name = _name_of(file)
        if not (WRITE_MODES & set(mode)) or match not in os.path.basename(name):
            return real_open(file, mode, *args, **kwargs)
        if fail_open is not None:
            disk.failures.append(name)
            if isinstance(file, int):
                os.close(file)
            raise OSError(fail_open, os.strerror(fail_open), name)
        return _FullFile(real_open(file, mode, *args, **kwargs), disk, name)

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", patched)
        m.setattr(io, "open", patched)
        yield disk


@contextlib.contextmanager
def file_size_limit(n_bytes: int) -> Iterator[None]:
    """No file of this process may grow past ``n_bytes`` (writes beyond fail with EFBIG)."""
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def leftovers(root: Path) -> list[Path]:
    """Temporary files or folders a failed write could have left under ``root``."""
    return sorted(
        p for p in root.rglob("*") if p.name.endswith((".tmp", ".part")) or ".tmp." in p.name
    )

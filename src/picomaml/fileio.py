"""Every file a command writes goes through here: atomic writes, JSON and JSON lines.

Why one module: a run killed half-way must never leave a file that a later stage reads as
complete (a truncated ``results.json`` would make a study cell look finished). All writers
use the same rule: write a temporary file next to the target (same folder, so the rename
cannot cross file systems), optionally ``fsync`` it, then ``os.replace`` it over the target.
Temporary files are created with the default permissions (``0o666`` less the umask), not the
``0o600`` that :func:`tempfile.mkstemp` gives, so results stay readable by a shared group.

A write that fails (disk full, permission denied, read-only file system) raises
:class:`OSError` naming the *target* path, never the temporary one and never no path at all
(a failed ``write`` on an open file carries no name); the CLI prints it as one line. Writers
in C++ or Rust (``torch.save``, safetensors) report such failures as their own exception
types; :func:`write_with` turns those into :class:`OSError` too. Nothing is left behind: the
temporary file is removed and an existing target keeps its old content.

Folders published as a whole (a checkpoint's ``step_N/``) are written by :func:`atomic_dir` as
``step_N.tmp/`` and renamed into place; a failure removes the temporary folder.

Streams: a file written over minutes (``train_log.jsonl``) goes through :func:`atomic_writer`
like any other and appears only when complete. An append-only log that lives across runs
(pretraining ``metrics.jsonl``, resumed runs append to it) cannot be renamed on every line;
:func:`append_jsonl` writes each record as one whole line and, when the write fails, cuts the
file back to its previous length, so the log only ever holds complete records.

Readers raise :class:`PicomamlError` naming the file (and line, for JSON lines) instead of a
bare decoding traceback.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from safetensors import SafetensorError

from picomaml.errors import PicomamlError

_counter = itertools.count()
#: Longest file name (in bytes) most file systems take.
NAME_MAX = 255
#: A temporary name of :func:`temp_path`: ``.NAME.PID.N.tmp``.
TEMP_RE = re.compile(r"^\..+\.\d+\.\d+\.tmp$", re.S)
#: What :func:`atomic_dir` appends to a folder's name while it is being written.
TEMP_DIR_SUFFIX = ".tmp"


def temp_path(path: Path) -> Path:
    """A fresh hidden name next to ``path`` for the temporary copy of a write in progress.

    The target's name is shortened in it when needed, so a target whose own name the file
    system takes never fails for its temporary's (ENAMETOOLONG).
    """
    tail = f".{os.getpid()}.{next(_counter)}.tmp"
    name = path.name
    room = NAME_MAX - len(tail.encode()) - 1
    while len(name.encode("utf-8", "surrogateescape")) > room:
        name = name[:-1]
    return path.with_name(f".{name}{tail}")


def remove_stale_temps(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Delete temporary files of :func:`temp_path` under ``folder`` left by a killed writer.

    Only for a folder this process owns (it holds its lock, :mod:`picomaml.locks`): no other
    writer can be using them. Returns what was removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    removed = []
    for path in sorted(found):
        if TEMP_RE.match(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def temp_dir_path(path: Path) -> Path:
    """The temporary name of folder ``path`` while :func:`atomic_dir` writes it: ``NAME.tmp``."""
    return path.with_name(path.name + TEMP_DIR_SUFFIX)


def remove_stale_temp_dirs(folder: str | Path) -> list[Path]:
    """Delete the temporary folders of :func:`atomic_dir` directly under ``folder`` left by a
    killed writer (same condition as :func:`remove_stale_temps`). Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for child in sorted(folder.iterdir()):
        if child.name.endswith(TEMP_DIR_SUFFIX) and child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
            removed.append(child)
    return removed


def _fsync_dir(folder: Path) -> None:
    """Persist a rename in ``folder`` (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def naming(exc: OSError, path: str | Path, tmp: str | Path | None = None) -> OSError:
    """``exc`` as an :class:`OSError` naming ``path``: unchanged when it already names a file
    other than ``tmp``, else a new one (same errno and cause) with ``path`` as its file name."""
    if exc.filename is not None and (tmp is None or str(exc.filename) != str(tmp)):
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


#: Less free space than this after a native writer failed without an errno: the disk is full.
FULL_DISK_BYTES = 1 << 20


def _native_error(exc: BaseException, path: Path) -> OSError | None:
    """A native writer's failure (torch.save raises RuntimeError, safetensors its own
    SafetensorError) as an :class:`OSError` naming ``path``; None for other exceptions.

    safetensors quotes the errno (``os error 28``); torch's message does not name the cause
    (``unexpected pos ...``), so a folder left with (almost) no free space is taken as ENOSPC.
    """
    if not isinstance(exc, (RuntimeError, SafetensorError)):
        return None
    detail = " ".join(str(exc).split())
    found = re.search(r"os error (\d+)", detail)
    if found:
        code = int(found.group(1))
        return OSError(code, os.strerror(code), str(path))
    try:
        full = shutil.disk_usage(path.parent).free < FULL_DISK_BYTES
    except OSError:
        full = False
    code = errno.ENOSPC if full else errno.EIO
    return OSError(code, f"{os.strerror(code)} (write failed: {detail})", str(path))


def _discard(tmp: Path) -> None:
    """Remove a temporary file; its own failure must not hide the error being raised."""
    with suppress(OSError):
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(
    path: str | Path, *, fsync: bool = False, temp: str | Path | None = None
) -> Iterator[Path]:
    """Yield a temporary path for a writer that wants a file name (safetensors, torch.save,
    a download); on success it replaces ``path``, on failure it is removed (an
    :class:`OSError` is raised again naming ``path``). ``temp``: the temporary name, when
    the writer wants a visible one (a download's ``NAME.part``); default :func:`temp_path`."""
    path = Path(path)
    tmp = temp_path(path) if temp is None else Path(temp)
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        _discard(tmp)
        named = naming(exc, path, tmp)
        if named is exc:
            raise
        raise named from exc
    except BaseException:
        _discard(tmp)
        raise
    if fsync:
        _fsync_dir(path.parent)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield the empty folder ``path.tmp/`` to fill; when the block ends without an exception it
    replaces ``path``, else it is removed (and an existing ``path`` keeps its content).

    An existing ``path`` is moved aside first and deleted after the rename, so ``path`` is
    only ever absent for the instant between two renames. A ``path.tmp/`` left by a killed
    writer is cleared first.
    """
    path = Path(path)
    tmp = temp_dir_path(path)
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir(parents=True)
        yield tmp
    except BaseException:
        # A failed write (disk full) frees what it wrote.
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        old = path.with_name(f"{path.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old)
    else:
        os.replace(tmp, path)


@contextmanager
def atomic_writer(path: str | Path, mode: str = "w", *, fsync: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file for streaming ``mode`` (``"w"`` text UTF-8, ``"wb"`` bytes) writes;
    the target appears, complete, only when the block ends without an exception."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_writer: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path, fsync=fsync) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        encoding = None if "b" in mode else "utf-8"
        with open(fd, mode, encoding=encoding) as fh:
            yield fh


def write_text(path: str | Path, text: str, *, fsync: bool = False) -> None:
    """Replace ``path`` atomically with UTF-8 ``text``."""
    with atomic_writer(path, "w", fsync=fsync) as fh:
        fh.write(text)


def write_bytes(path: str | Path, data: bytes, *, fsync: bool = False) -> None:
    """Replace ``path`` atomically with ``data``."""
    with atomic_writer(path, "wb", fsync=fsync) as fh:
        fh.write(data)


def write_json(
    path: str | Path,
    obj: Any,
    *,
    indent: int | None = 2,
    end: str = "\n",
    fsync: bool = False,
    **dumps: Any,
) -> None:
    """Replace ``path`` atomically with ``obj`` as JSON followed by ``end``.

    ``allow_nan=False`` makes a non-finite number an error naming ``path`` (``NaN`` and
    ``Infinity`` are not JSON) instead of a file other readers reject."""
    try:
        text = json.dumps(obj, indent=indent, **dumps)
    except ValueError as exc:
        raise PicomamlError(f"{path}: not written: {exc}") from exc
    write_text(path, text + end, fsync=fsync)


def write_with(path: str | Path, write: Callable[[Path], None], *, fsync: bool = False) -> None:
    """Replace ``path`` atomically with what ``write(tmp_path)`` writes.

    The file gets the mode an ordinary new file gets here (``0o666`` less the umask) even when
    the writer makes its own owner-only file and renames it into place (safetensors does).
    """
    with atomic_path(path, fsync=fsync) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            mode = os.fstat(fd).st_mode & 0o7777
        finally:
            os.close(fd)
        try:
            write(tmp)
            os.chmod(tmp, mode)
        except OSError:
            raise
        except Exception as exc:
            native = _native_error(exc, Path(path))
            if native is None:
                raise
            raise native from exc


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; invalid JSON (a truncated file, say) is an error naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PicomamlError(f"{path}: not valid JSON ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise PicomamlError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def read_json_object(path: str | Path) -> dict[str, Any]:
    """:func:`read_json` of a file that must hold a JSON object (``{...}``)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise PicomamlError(
            f"{path}: expected a JSON object, got {type(data).__name__} (a damaged file?)"
        )
    return data


def jsonl_line(record: Any) -> str:
    """One JSON-lines record (``ensure_ascii`` as ``json.dumps``), newline included."""
    return json.dumps(record) + "\n"


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines file (blank lines skipped); a bad line names file:line."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise PicomamlError(f"{path}:{lineno}: not valid JSON ({exc})") from exc


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSON-lines file (see :func:`iter_jsonl`)."""
    return list(iter_jsonl(path))


def append_text(path: str | Path, text: str) -> None:
    """Append ``text`` (UTF-8) to a log that grows while its run is alive.

    It is written unbuffered as a whole; when that fails (disk full) the file is cut back to
    its length before, so a reader never meets half a line.
    """
    path = Path(path)
    data = text.encode("utf-8")
    try:
        with open(path, "ab", buffering=0) as fh:
            size = fh.seek(0, os.SEEK_END)
            try:
                view = memoryview(data)
                while view:
                    written = fh.write(view)
                    if not written:
                        raise OSError(errno.EIO, "the write made no progress")
                    view = view[written:]
            except OSError:
                fh.truncate(size)
                raise
    except OSError as exc:
        named = naming(exc, path)
        if named is exc:
            raise
        raise named from exc


def append_jsonl(path: str | Path, record: Any) -> None:
    """Append one record to a JSON-lines log, whole or not at all (see :func:`append_text`)."""
    append_text(path, jsonl_line(record))


def copy_file(source: str | Path, path: str | Path, *, fsync: bool = False) -> None:
    """Replace ``path`` atomically with a copy of ``source``'s content (the mode is that of a
    new file here, as for every other write)."""
    write_with(path, lambda tmp: shutil.copyfile(source, tmp), fsync=fsync)


def write_jsonl(path: str | Path, records: Iterable[Any], *, fsync: bool = False) -> None:
    """Replace ``path`` atomically with ``records``, one JSON object per line."""
    with atomic_writer(path, "w", fsync=fsync) as fh:
        for record in records:
            fh.write(jsonl_line(record))


__all__ = [
    "append_jsonl",
    "append_text",
    "atomic_dir",
    "atomic_path",
    "atomic_writer",
    "copy_file",
    "iter_jsonl",
    "jsonl_line",
    "naming",
    "read_json",
    "read_json_object",
    "read_jsonl",
    "remove_stale_temp_dirs",
    "remove_stale_temps",
    "temp_dir_path",
    "temp_path",
    "write_bytes",
    "write_json",
    "write_jsonl",
    "write_text",
    "write_with",
]

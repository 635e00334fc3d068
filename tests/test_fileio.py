"""Atomic writes and JSON/JSON-lines reading: one implementation every stage uses."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from picomaml import fileio
from picomaml.errors import PicomamlError
from picomaml.fileio import (
    append_jsonl,
    append_text,
    atomic_writer,
    read_json,
    read_json_object,
    read_jsonl,
    remove_stale_temps,
    write_json,
    write_jsonl,
    write_text,
    write_with,
)


def test_write_json_replaces_and_leaves_no_temp(tmp_path) -> None:
    path = tmp_path / "r.json"
    write_json(path, {"a": 1})
    write_json(path, {"a": 2})
    assert path.read_text() == '{\n  "a": 2\n}\n' and read_json(path) == {"a": 2}
    write_json(path, [1], indent=None, end="")
    assert path.read_text() == "[1]"
    assert os.listdir(tmp_path) == ["r.json"]


def test_failed_write_keeps_the_old_file(tmp_path) -> None:
    path = tmp_path / "r.txt"
    write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_writer(path) as fh:
        fh.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["r.txt"]

    def broken(tmp) -> None:
        tmp.write_text("partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_with(path, broken)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["r.txt"]


def test_new_files_follow_the_umask(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
        with atomic_writer(tmp_path / "b.bin", "wb") as fh:
            fh.write(b"x")
    finally:
        os.umask(old)
    for name in ("a.txt", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644  # not mkstemp's 0600


def test_jsonl_round_trip_and_bad_line(tmp_path) -> None:
    path = tmp_path / "m.jsonl"
    write_jsonl(path, [{"step": 1}])
    append_jsonl(path, {"step": 2})
    assert read_jsonl(path) == [{"step": 1}, {"step": 2}]
    with path.open("a") as fh:
        fh.write("\n{broken\n")
    with pytest.raises(PicomamlError, match=r"m\.jsonl:4: not valid JSON"):
        read_jsonl(path)
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(PicomamlError, match=r"x\.json: not valid JSON"):
        read_json(tmp_path / "x.json")
    assert json.loads((tmp_path / "m.jsonl").read_text().splitlines()[0]) == {"step": 1}


def test_native_writer_failures_become_os_errors_naming_the_target(tmp_path) -> None:
    from safetensors import SafetensorError

    path = tmp_path / "model.safetensors"

    def rust_disk_full(tmp) -> None:
        tmp.write_bytes(b"partial")
        raise SafetensorError("Error while serializing: I/O error: No space left (os error 28)")

    with pytest.raises(OSError) as info:
        write_with(path, rust_disk_full)
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(path))
    assert info.value.strerror == os.strerror(errno.ENOSPC)

    def torch_failed(tmp) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    with pytest.raises(OSError) as info:
        write_with(path, torch_failed)
    assert (info.value.errno, info.value.filename) == (errno.EIO, str(path))
    assert "unexpected pos 704" in info.value.strerror

    def bug(tmp) -> None:
        raise TypeError("not an I/O failure")

    with pytest.raises(TypeError):  # a programming error stays what it is
        write_with(path, bug)
    assert os.listdir(tmp_path) == []


def test_failed_write_on_an_open_file_names_the_target(tmp_path, monkeypatch) -> None:
    from tests.cli.diskfull import full_disk

    path = tmp_path / "r.json"
    with full_disk(monkeypatch, "r.json", room=5), pytest.raises(OSError) as info:
        write_json(path, {"key": "value"})
    assert (info.value.errno, info.value.filename) == (errno.ENOSPC, str(path))
    assert os.listdir(tmp_path) == []


def test_append_is_whole_lines_or_nothing(tmp_path, monkeypatch) -> None:
    from tests.cli.diskfull import full_disk

    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, {"step": 1})
    before = path.read_bytes()
    with full_disk(monkeypatch, "metrics.jsonl", room=4), pytest.raises(OSError) as info:
        append_jsonl(path, {"step": 2, "loss": 1.5})
    assert info.value.filename == str(path) and path.read_bytes() == before
    append_text(path, '{"step": 2}\n')
    assert read_jsonl(path) == [{"step": 1}, {"step": 2}]


def test_native_writers_get_the_umask_mode_too(tmp_path) -> None:
    import torch
    from safetensors.torch import save_file

    old = os.umask(0o022)
    try:
        write_with(tmp_path / "w.safetensors", lambda t: save_file({"x": torch.zeros(2)}, str(t)))
        write_with(tmp_path / "s.pt", lambda t: torch.save({"x": 1}, t))
    finally:
        os.umask(old)
    for name in ("w.safetensors", "s.pt"):  # safetensors alone makes 0600 files
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


# --- issue 22 -----------------------------------------------------------------------------


def test_a_too_long_name_is_reported_as_the_target_not_the_temporary(tmp_path) -> None:
    for name_len in (250, 255):  # legal names: their temporary file is shortened to fit
        write_text(tmp_path / ("a" * name_len), "x")
        write_with(tmp_path / ("b" * name_len), lambda tmp: tmp.write_text("y"))
    target = tmp_path / ("c" * 256)
    for write in (lambda: write_text(target, "x"), lambda: write_json(target, {})):
        with pytest.raises(OSError) as err:
            write()
        assert err.value.errno == errno.ENAMETOOLONG and err.value.filename == str(target)
    assert sorted(len(n) for n in os.listdir(tmp_path)) == [250, 250, 255, 255]


def test_stale_temporaries_are_removed(tmp_path) -> None:
    (tmp_path / "model").mkdir()
    stale = [tmp_path / ".run.json.4242.0.tmp", tmp_path / "model" / ".head.safetensors.7.3.tmp"]
    kept = [tmp_path / "run.json", tmp_path / "notes.tmp", tmp_path / ".x.tmp"]
    for path in stale + kept:
        path.write_text("x")
    assert remove_stale_temps(tmp_path) == sorted(stale)
    assert all(not p.exists() for p in stale) and all(p.exists() for p in kept)


def test_json_object_reader_and_non_finite_numbers(tmp_path) -> None:
    path = tmp_path / "results.json"
    for text, kind in (("[1, 2]", "list"), ('"x"', "str"), ("3", "int")):
        path.write_text(text)
        with pytest.raises(
            PicomamlError, match=rf"results\.json: expected a JSON object, got {kind}"
        ):
            read_json_object(path)
    path.write_text('{"a": 1')
    with pytest.raises(PicomamlError, match=r"results\.json: not valid JSON"):
        read_json_object(path)
    with pytest.raises(PicomamlError, match=r"run\.json: not written: Out of range float"):
        write_json(tmp_path / "run.json", {"lr": float("inf")}, allow_nan=False)
    assert not (tmp_path / "run.json").exists()


# --- folders and copies (issue 21: one primitive for every atomic write) --------------------


def test_atomic_dir_replaces_an_existing_folder_whole(tmp_path: Path) -> None:
    final = tmp_path / "step_1"
    final.mkdir()
    (final / "old").write_text("1")
    (tmp_path / "step_1.tmp").mkdir()  # left by a killed writer: cleared first
    (tmp_path / "step_1.tmp" / "half").write_text("x")
    with fileio.atomic_dir(final) as tmp:
        assert tmp == tmp_path / "step_1.tmp" and list(tmp.iterdir()) == []
        (tmp / "new").write_text("2")
        assert [p.name for p in final.iterdir()] == ["old"]  # untouched until the block ends
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_1"]
    assert [p.name for p in final.iterdir()] == ["new"]


def test_a_failed_atomic_dir_leaves_the_old_folder(tmp_path: Path) -> None:
    final = tmp_path / "step_1"
    final.mkdir()
    (final / "old").write_text("1")
    with pytest.raises(OSError, match="disk full"), fileio.atomic_dir(final) as tmp:
        (tmp / "new").write_text("2")
        raise OSError(28, "disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_1"]
    assert [p.name for p in final.iterdir()] == ["old"]
    assert fileio.remove_stale_temp_dirs(tmp_path) == []


def test_copy_file_is_atomic_and_takes_the_umask_mode(tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"weights")
    source.chmod(0o600)
    target = tmp_path / "out" / "copy.bin"
    target.parent.mkdir()
    old = os.umask(0o022)
    try:
        fileio.copy_file(source, target)
    finally:
        os.umask(old)
    assert target.read_bytes() == b"weights"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["copy.bin"]

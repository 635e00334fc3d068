"""Atomic writes and JSON/JSON-lines reading: one implementation every stage uses."""

from __future__ import annotations

import json
import os
import stat

import pytest

from picomaml.errors import PicomamlError
from picomaml.fileio import (
    append_jsonl,
    atomic_writer,
    read_json,
    read_jsonl,
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

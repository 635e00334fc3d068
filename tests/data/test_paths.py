"""The path rule of data files named in configs and on the command line (data/paths.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from picomaml.data.paths import resolve_data_path, under_data_root


@pytest.mark.parametrize(
    "value,under",
    [
        ("corpus/x.jsonl.gz", True),
        ("x", True),
        ("./x", False),
        ("../x", False),
        ("/abs/x", False),
        ("~/x", False),
        (".hidden/x", True),
    ],
)
def test_which_paths_lie_under_the_data_root(value: str, under: bool) -> None:
    assert under_data_root(value) is under


def test_resolve_data_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    monkeypatch.chdir(tmp_path)
    assert resolve_data_path("corpus/a.gz", root) == root / "corpus/a.gz"
    assert resolve_data_path("./a.gz", root) == tmp_path / "a.gz"
    assert resolve_data_path("../a.gz", root) == tmp_path.parent / "a.gz"
    assert resolve_data_path("corpus/a.gz", None) == tmp_path / "corpus/a.gz"
    # An absolute path is used as given (not resolved through symlinks).
    assert resolve_data_path(str(tmp_path / "x/../y"), root) == tmp_path / "x/../y"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_path("~/a.gz", root) == tmp_path / "home/a.gz"

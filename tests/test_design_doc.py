"""docs/DESIGN.md's package layout matches the tree: every folder and module file it names
exists, and every package folder of ``src/picomaml`` is in it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "picomaml"


def _layout_rows() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    section = text.split("## Package layout (`src/picomaml/`)", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ", 1) for line in section.splitlines() if line.startswith("| `")]
    return [(first.lstrip("| "), rest) for first, rest in rows]


def _named(cell: str) -> list[str]:
    return re.findall(r"`([A-Za-z_][\w/]*(?:/|\.py))`", cell)


def _runtime(name: str) -> bool:
    """A run-time path (``step_N/``, ``RESULTS_DIR/derived/``), not a package path."""
    return any(part == "step_N" or part.isupper() for part in name.split("/"))


def _where(name: str, folders: list[str]) -> list[Path]:
    """Where ``name`` must exist: under the repository for ``tests/``, under the package for a
    path, and for a bare name anywhere under its row's folders (the package without one)."""
    if name.startswith("tests/"):
        return [ROOT / name]
    if "/" in name.rstrip("/"):
        return [PKG / name]
    return [p for f in folders or [""] for p in (PKG / f).rglob(name.rstrip("/"))]


def test_every_folder_and_file_named_exists() -> None:
    rows = _layout_rows()
    assert len(rows) > 20
    missing = []
    for first, rest in rows:
        folders = [n for n in _named(first) if n.endswith("/")]
        missing += [n for n in _named(first) if not (PKG / n).exists()]
        missing += [
            f"{n} (row {first})"
            for n in _named(rest)
            if not _runtime(n) and not any(p.exists() for p in _where(n, folders))
        ]
    assert missing == []


def test_every_package_folder_is_in_the_layout() -> None:
    named = {n.rstrip("/") for first, rest in _layout_rows() for n in _named(first + rest)}
    folders = {
        str(p.relative_to(PKG))
        for p in PKG.rglob("*")
        if p.is_dir() and (p / "__init__.py").is_file()
    }
    covered = {
        f for f in folders for n in named if f == n or f.endswith("/" + n) or n.startswith(f + "/")
    }
    assert folders - covered == set()


def test_the_check_sees_a_missing_folder() -> None:
    assert _named("`nowhere/` and `pretrain/trainer.py` and `x.py`, not `y.json`") == [
        "nowhere/", "pretrain/trainer.py", "x.py",
    ]  # fmt: skip
    assert not (PKG / "nowhere").exists()

"""What produced a results file: package, git commit, library versions and the time.

Why: a ``results.json`` copied away from its run dir (or compared a year later) must say
which code and which libraries scored it; seqeval and torch versions change numbers.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import picomaml

PACKAGE_DIR = Path(picomaml.__file__).resolve().parent


def library_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (None when it is not installed)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """``{"commit": sha, "dirty": bool}`` of the picomaml checkout this code runs from;
    both None for an installed wheel (or without git). A checkout that merely *contains* an
    installed picomaml (a venv inside another repository) is not picomaml's and not used."""
    top = _git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() / "src" / "picomaml" != PACKAGE_DIR:
        return {"commit": None, "dirty": None}
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def provenance() -> dict[str, Any]:
    """Package version, git commit, UTC timestamp and the versions that shape the numbers."""
    git = git_state()
    return {
        "picomaml": library_version("picomaml") or picomaml.__version__,
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": library_version("torch"),
        "seqeval": library_version("seqeval"),
        "numpy": library_version("numpy"),
    }


__all__ = ["git_state", "library_version", "provenance"]

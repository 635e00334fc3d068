"""Where the data lives: one resolution rule shared by every command."""

from __future__ import annotations

import os
from pathlib import Path

from picomaml.errors import PicomamlError

ENV_VAR = "PICOMAML_DATA"


def candidate_data_dirs(explicit: str | Path | None = None) -> list[tuple[str, Path]]:
    """The places looked at, in order, with where each came from."""
    out: list[tuple[str, Path]] = []
    if explicit is not None:
        out.append(("--data-dir", Path(explicit)))
    env = os.environ.get(ENV_VAR)
    if env:
        out.append((f"${ENV_VAR}", Path(env)))
    out.append(("default", Path("../shared/data")))
    out.append(("default", Path("data")))
    return out


def resolve_data_dir(explicit: str | Path | None = None) -> Path:
    """Return the data root: ``--data-dir``, ``$PICOMAML_DATA``, ``../shared/data``, ``./data``.

    An explicit choice that does not exist is an error rather than a silent fallback,
    so a typo never makes a run read other data than the user meant.
    """
    candidates = candidate_data_dirs(explicit)
    for origin, path in candidates:
        if path.is_dir():
            return path.resolve()
        if origin != "default":
            raise PicomamlError(f"data directory from {origin} does not exist: {path}")
    tried = ", ".join(str(p) for _, p in candidates)
    raise PicomamlError(
        f"no data directory found (tried {tried}). Pass --data-dir DIR, set "
        f"${ENV_VAR}=DIR, or run `picomaml data download` to fetch UNER into ./data"
    )

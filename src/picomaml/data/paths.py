"""Where the data lives: one resolution rule shared by every command."""

from __future__ import annotations

import os
from pathlib import Path

from picomaml.errors import PicomamlError

ENV_VAR = "PICOMAML_DATA"

#: The data root's layout, as the one-line "missing data" errors spell it out.
UNER_LAYOUT = "uner/UNER_<Language>-<Treebank>/<code>-ud-<split>.iob2"
CORPUS_LAYOUT = "corpus/english-mini/{train,valid}.jsonl.gz"
FETCH_COMMAND = "picomaml data download"


def under_data_root(value: str | Path) -> bool:
    """Whether the path rule looks ``value`` up under the data root: a relative path that does
    not start with ``./`` or ``../`` (an absolute path, or one starting with ``~``, is used as
    is; ``./`` and ``../`` are relative to the current directory)."""
    text = str(value)
    return not (Path(text).expanduser().is_absolute() or text.startswith(("./", "../")))


def resolve_data_path(value: str | Path, data_root: str | Path | None) -> Path:
    """A data file named in a config (``data.corpus``, ``data.valid``) or on the command line
    (``probe --corpus``) under the path rule of :func:`under_data_root`; with no data root,
    relative paths are relative to the current directory. Absolute unless given absolute."""
    path = Path(str(value)).expanduser()
    if path.is_absolute():
        return path
    if not under_data_root(value) or data_root is None:
        return path.resolve()
    return (Path(data_root) / path).resolve()


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


def find_data_dir(explicit: str | Path | None = None) -> Path | None:
    """The data root, or None when no default location exists (nothing was chosen).

    An explicit choice (``--data-dir``, ``$PICOMAML_DATA``) that does not exist is an error
    rather than a silent fallback, so a typo never makes a run read other data than meant.
    """
    for origin, path in candidate_data_dirs(explicit):
        if path.is_dir():
            return path.resolve()
        if origin != "default":
            raise PicomamlError(f"data directory from {origin} does not exist: {path}")
    return None


def default_fetch_dir(explicit: str | Path | None = None) -> Path:
    """Where fetched data goes: the chosen data root, else ``./data`` (last place looked at)."""
    for origin, path in candidate_data_dirs(explicit):
        if origin != "default":
            return path
    return Path("data")


def missing_data_message(what: str, root: Path | None, fetch_args: str = "") -> str:
    """One line: what is missing, the command that fetches it, the layout to copy in by hand.

    ``fetch_args`` narrows the command, e.g. ``" --datasets sk_snk"``.
    """
    if root is None:
        tried = ", ".join(str(p) for _, p in candidate_data_dirs())
        where = f"no data root; tried {tried}"
        dest = default_fetch_dir()
    else:
        where, dest = f"data root {root}", root
    return (
        f"{what} not found ({where}). Fetch with `{FETCH_COMMAND} --dest {dest}{fetch_args}` "
        f"(needs internet), or copy the files in by hand as {dest}/{UNER_LAYOUT} and "
        f"{dest}/{CORPUS_LAYOUT} (or pass --data-dir DIR / set ${ENV_VAR}=DIR)"
    )


def resolve_data_dir(explicit: str | Path | None = None) -> Path:
    """Return the data root: ``--data-dir``, ``$PICOMAML_DATA``, ``../shared/data``, ``./data``.

    Only the command line calls this, once per command (``cli/common.py``); the library
    takes the resulting ``Path``, so every stage of one command reads the same root.

    An explicit choice that does not exist is an error rather than a silent fallback,
    so a typo never makes a run read other data than the user meant.
    """
    root = find_data_dir(explicit)
    if root is None:
        raise no_data_root_error()
    return root


def no_data_root_error() -> PicomamlError:
    """The one-line error of a run that needs data when no data root was found."""
    return PicomamlError(missing_data_message("the UNER files and the pretraining corpus", None))

"""What several commands share: the data root, resolved once per command; range-checked
integer flags; handlers named by module, imported when their command runs.

Argparse-level code only: the parsers in :mod:`picomaml.cli.parsers` import this module, and
``picomaml --help`` must not load any stack.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from picomaml.config import quote
from picomaml.data.paths import resolve_data_dir
from picomaml.errors import PicomamlError


def explicit_data_dir(args: argparse.Namespace) -> str | None:
    """The ``--data-dir`` given after the command, else the one before it, else None."""
    return getattr(args, "sub_data_dir", None) or getattr(args, "data_dir", None)


def data_root(args: argparse.Namespace, *, required: bool = True) -> Path | None:
    """The data root of this command (``--data-dir`` before or after the command, else
    ``$PICOMAML_DATA``, ``../shared/data``, ``./data``), resolved once and passed down.

    ``required=False``: ``None`` when no root is found and none was named, for commands
    that can run without the raw data (the report; the grid, whose cells that need data
    then fail with the missing-data line). Only the CLI resolves the root: the library
    takes this ``Path``.
    """
    explicit = explicit_data_dir(args)
    try:
        return resolve_data_dir(explicit)
    except PicomamlError:
        if required or explicit is not None:
            raise
        return None


def int_arg(flag: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` for an integer flag in ``low .. high``: anything else is the
    one-line ``picomaml: error: FLAG: ...`` (never a traceback from deep inside a command)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise PicomamlError(f"{flag}: expected an integer, got {quote(text)}") from None
        if value < low or (high is not None and value > high):
            span = f"{low}..{high}" if high is not None else f">= {low}"
            raise PicomamlError(f"{flag}: expected an integer {span}, got {value}")
        return value

    return parse


@dataclass(frozen=True)
class Handler:
    """A command's handler, ``function`` of ``module``: the module (and the stack it imports)
    is loaded only when the command runs, so building the parser stays cheap."""

    module: str
    function: str

    def resolve(self) -> Callable[[argparse.Namespace], int | None]:
        """The handler function itself (imports its module)."""
        return getattr(importlib.import_module(self.module), self.function)

    def __call__(self, args: argparse.Namespace) -> int | None:
        return self.resolve()(args)


def handler(target: str) -> Handler:
    """``"picomaml.cli.tag:run"`` as a :class:`Handler` (for ``set_defaults(func=...)``)."""
    module, _, function = target.partition(":")
    return Handler(module, function)


def show_help(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """The handler of a command group given no subcommand: its help, exit status 2."""

    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return run

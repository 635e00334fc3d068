"""Placeholder for commands whose stage has not landed: they say so plainly."""

from __future__ import annotations

import argparse

from picomaml.errors import PicomamlError


def register_stub(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    """Register ``name`` as a command that fails with 'not implemented yet'."""
    p = sub.add_parser(name, help=f"{help_text} (not implemented yet)")
    p.add_argument("rest", nargs=argparse.REMAINDER)

    def _fail(args: argparse.Namespace) -> int:
        raise PicomamlError(f"'picomaml {name}' is not implemented yet")

    p.set_defaults(func=_fail)

"""CLI: picomaml grid / report / demo."""

from __future__ import annotations

import argparse

from picomaml.cli._stub import register_stub


def register(sub: argparse._SubParsersAction) -> None:
    """Add the study commands."""
    register_stub(sub, "grid", "run an experiment grid")
    register_stub(sub, "report", "write the study report")
    register_stub(sub, "demo", "the study in miniature")

"""CLI: picomaml evaluate."""

from __future__ import annotations

import argparse

from picomaml.cli._stub import register_stub


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `evaluate` command."""
    register_stub(sub, "evaluate", "zero-shot NER evaluation")

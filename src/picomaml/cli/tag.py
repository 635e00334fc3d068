"""CLI: picomaml tag."""

from __future__ import annotations

import argparse

from picomaml.cli._stub import register_stub


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `tag` command."""
    register_stub(sub, "tag", "tag text with a fine-tuned model")

"""CLI: picomaml model."""

from __future__ import annotations

import argparse

from picomaml.cli._stub import register_stub


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `model` command."""
    register_stub(sub, "model", "model configuration and parameter counts")

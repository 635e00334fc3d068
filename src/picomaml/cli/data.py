"""CLI: picomaml data."""

from __future__ import annotations

import argparse

from picomaml.cli._stub import register_stub


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `data` command."""
    register_stub(sub, "data", "dataset statistics and download")

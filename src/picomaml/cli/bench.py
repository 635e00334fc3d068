"""CLI: picomaml bench."""

from __future__ import annotations

import argparse

from picomaml.cli._stub import register_stub


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `bench` command."""
    register_stub(sub, "bench", "speed benchmarks")

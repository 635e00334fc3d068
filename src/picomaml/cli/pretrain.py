"""CLI: picomaml pretrain."""

from __future__ import annotations

import argparse

from picomaml.cli._stub import register_stub


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `pretrain` command."""
    register_stub(sub, "pretrain", "hybrid AR + MAML pretraining")

"""CLI: picomaml finetune."""

from __future__ import annotations

import argparse

from picomaml.cli._stub import register_stub


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `finetune` command."""
    register_stub(sub, "finetune", "fine-tune a CRF NER head")

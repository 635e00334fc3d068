"""``picomaml`` entry point.

Each stage owns a module in :mod:`picomaml.cli` exposing ``register(subparsers)``;
the subcommand's handler is stored as ``func`` on its parser and receives the
parsed arguments. User errors (:class:`PicomamlError`) print one clear line.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from picomaml.errors import PicomamlError

STAGES = ["data", "model", "pretrain", "finetune", "evaluate", "tag", "bench", "study"]


def build_parser() -> argparse.ArgumentParser:
    """Assemble the parser from every stage module."""
    parser = argparse.ArgumentParser(
        prog="picomaml",
        description="Meta-pretraining of Pico decoders and zero-shot cross-lingual NER.",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="data root (default: $PICOMAML_DATA, else ../shared/data, else ./data)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for stage in STAGES:
        importlib.import_module(f"picomaml.cli.{stage}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PicomamlError as exc:
        print(f"picomaml: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("picomaml: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

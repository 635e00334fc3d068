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

STAGES = ["data", "model", "pretrain", "probe", "finetune", "evaluate", "tag", "bench", "study"]


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
    args, extra = parser.parse_known_args(argv)
    # argparse stops filling a trailing ``nargs="*"`` positional at the first option, so
    # ``tag RUN --json "text"`` leaves "text" over; commands that set ``trailing_into``
    # take such leftovers (never anything that looks like an option) into that list.
    into = getattr(args, "trailing_into", None)
    if extra and into and not any(x.startswith("-") for x in extra):
        getattr(args, into).extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
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

"""CLI: ``picomaml tag RUN_DIR "text"`` (or ``--file F``, or stdin): NER tags for raw text."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from picomaml.errors import PicomamlError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `tag` command."""
    p = sub.add_parser(
        "tag",
        help="tag text with a fine-tuned run",
        description=(
            "One sentence per line (each TEXT argument is one line), Unicode NFC-normalised "
            "unless --no-normalize. Words: whitespace tokenisation with punctuation split off, "
            "never inside a grapheme cluster (an accented letter, an emoji with its modifiers); "
            "zero-width characters are never words. Empty lines are skipped with a note on "
            "stderr. Long sentences are windowed internally: every word gets a tag."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("text", nargs="*", help="sentences to tag (default: --file or stdin)")
    p.add_argument("--file", help="UTF-8 text file, one sentence per line")
    p.add_argument("--json", action="store_true", help="JSON lines: words, tags, entities")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument(
        "--no-normalize",
        dest="normalize",
        action="store_false",
        help="keep the text's Unicode form (default: NFC, as the UNER training text)",
    )
    p.set_defaults(func=_run, trailing_into="text")


def _read_lines(args: argparse.Namespace) -> list[str]:
    if args.text and args.file:
        raise PicomamlError("tag: give TEXT or --file, not both")
    if args.text:
        return [line for text in args.text for line in text.splitlines() or [""]]
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise PicomamlError(f"tag: --file {path} does not exist")
        try:
            return path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as exc:
            raise PicomamlError(f"tag: {path} is not UTF-8 text ({exc})") from exc
    return sys.stdin.read().splitlines()


def _run(args: argparse.Namespace) -> int:
    from picomaml.cli.common import data_root
    from picomaml.ner.evaluate import load_run
    from picomaml.ner.tag import format_result, split_words, tag_lines

    lines = _read_lines(args)
    if not any(split_words(line) for line in lines):
        raise PicomamlError("tag: no text to tag (all input lines are empty or invisible)")
    loaded = load_run(args.run_dir, device=args.device, data_root=data_root(args, required=False))
    result = tag_lines(loaded, lines, normalize=args.normalize)
    for n in result.skipped_lines:
        print(f"picomaml tag: line {n} has no words, skipped", file=sys.stderr)
    print(format_result(result, args.json))
    return 0

"""The parser of ``picomaml tag RUN_DIR "text"`` (or ``--file F``, or stdin)."""

from __future__ import annotations

import argparse

from picomaml.cli.common import handler


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
            "stderr. Long sentences are windowed internally: every word gets a tag. Input is "
            "tagged as it is read, in bounded batches; a file shows a progress bar on stderr."
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
    p.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar, even when the input is a file",
    )
    p.set_defaults(func=handler("picomaml.cli.tag:run"), trailing_into="text")

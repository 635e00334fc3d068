"""The parser of ``picomaml evaluate``."""

from __future__ import annotations

import argparse

from picomaml.cli.common import handler, int_arg
from picomaml.config import MAX_SEED


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `evaluate` command."""
    p = sub.add_parser(
        "evaluate",
        help="score a fine-tuning run on the zero-shot targets, PUD and the source test set",
        description=(
            "Writes RUN_DIR/results.json (seqeval default and strict modes, per type, bootstrap "
            "95% CI), predictions/{code}.iob2 and confidence/{code}.jsonl. Default datasets: "
            "tl_trg tl_ugnayan ceb_gja, the six PUD sets and the source's test set (for source "
            "'all', each of the nine sources' test sets separately)."
        ),
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--datasets", nargs="+", help="dataset codes to score ('all' = nine sources)")
    p.add_argument(
        "--n-resamples",
        type=int_arg("--n-resamples", 1, 1_000_000),
        default=1000,
        help="bootstrap resamples",
    )
    p.add_argument("--seed", type=int_arg("--seed", 0, MAX_SEED), default=0, help="bootstrap seed")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.set_defaults(func=handler("picomaml.cli.evaluate:run"))

"""The parser of ``picomaml probe BACKBONE``."""

from __future__ import annotations

import argparse

from picomaml.cli.common import handler


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``probe``."""
    p = sub.add_parser(
        "probe",
        help="few-shot SMLMT probe of a backbone (prototype and adapted-head accuracy)",
        description=(
            "Score held-out N-way K-shot SMLMT episodes (drawn from a held-out corpus file, "
            "the same episodes for every backbone): nearest-prototype accuracy with no "
            "training, and accuracy after the paper's inner loop with a fixed fresh head. "
            "Each figure with a 95%% interval over episodes and the chance level."
        ),
    )
    p.add_argument(
        "backbone",
        help="Pico folder, pretraining run dir, checkpoints/step_N or hf:OWNER/REPO[@REV][/SUB]",
    )
    p.add_argument("--ways", type=int, default=None, help="classes per episode (default 32)")
    p.add_argument("--shots", type=int, default=None, help="support windows per class (4)")
    p.add_argument("--queries", type=int, default=None, help="query windows per class (4)")
    p.add_argument("--episodes", type=int, default=None, help="episodes (default 200)")
    p.add_argument("--window", type=int, default=None, help="tokens per window (128)")
    p.add_argument("--seed", type=int, default=None, help="episode seed (0)")
    p.add_argument(
        "--split",
        choices=["valid", "train"],
        default="valid",
        help="valid (default: held-out rows) or train (the training corpus's first "
        "--pool-tokens tokens and training words: how well the training task is solved)",
    )
    p.add_argument(
        "--words",
        choices=["held-out", "training", "all"],
        default=None,
        help="class words: held-out (default: never an SMLMT class in pretraining), "
        "training, or all (the version-1 probe)",
    )
    p.add_argument(
        "--heldout-share",
        type=float,
        default=None,
        help="share of words held out (default: the run's meta.heldout_share, else 0.1)",
    )
    p.add_argument(
        "--max-word-frequency",
        type=float,
        default=None,
        help="candidate words' frequency cap (default: the run's meta.max_word_frequency, "
        "else 5e-4; the version-1 probe used 5e-3)",
    )
    p.add_argument("--min-word-count", type=int, default=None, help="minimum count (8)")
    p.add_argument(
        "--documents",
        choices=["separate", "any"],
        default=None,
        help="separate (default: support and query of a class from different documents) "
        "or any (the version-1 probe)",
    )
    p.add_argument(
        "--pool-tokens", type=int, default=None, help="tokens indexed (all; 1,000,000 for train)"
    )
    p.add_argument(
        "--corpus",
        default=None,
        help="held-out corpus file (default: the data root's corpus/english-mini/valid.jsonl.gz)",
    )
    p.add_argument(
        "--representation",
        choices=["mask", "last", "after_mask", "before_mask"],
        default=None,
        help="window feature (default mask; before_mask never sees the [MASK] token)",
    )
    p.add_argument(
        "--output-init",
        choices=["prototypes", "zeros", "xavier", "persistent"],
        default=None,
        help="output layer of the fresh head (default prototypes)",
    )
    p.add_argument("--inner-steps", type=int, default=None, help="inner SGD steps (10)")
    p.add_argument("--inner-lr", type=float, default=None, help="inner learning rate (1e-3)")
    p.add_argument(
        "--all-checkpoints",
        action="store_true",
        help="score every checkpoint of the run dir, or of a Hub repository (needs --out)",
    )
    p.add_argument("--out", default=None, help="JSON file (default RUN_DIR/probe.json)")
    p.set_defaults(func=handler("picomaml.cli.probe:run"))

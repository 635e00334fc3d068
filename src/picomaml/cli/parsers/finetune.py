"""The parser of ``picomaml finetune``."""

from __future__ import annotations

import argparse

from picomaml.cli.common import handler, int_arg
from picomaml.config import MAX_SEED


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `finetune` command."""
    p = sub.add_parser(
        "finetune",
        help="fine-tune a CRF NER head (head) or the whole model (full) on a UNER source",
        description=(
            "Fine-tune on a UNER source and write a RUN_DIR (finetune.yaml, run.json, "
            "train_log.jsonl, model/). Defaults are the paper's (AdamW 3e-5, 10 epochs, early "
            "stopping on source dev micro-F1); extra key=value arguments override config keys, "
            "e.g. lr.head=1e-3 epochs=2 max_train_sentences=200."
        ),
    )
    p.add_argument(
        "--backbone",
        help="Pico HF folder, pretraining run dir, checkpoints/step_N, or a published "
        "checkpoint hf:OWNER/REPO[@REVISION][/SUBFOLDER] (needs the [hub] extra)",
    )
    p.add_argument("--source", help="UNER code with a train split (e.g. sk_snk) or 'all'")
    p.add_argument("--regime", choices=["head", "full"], help="head: frozen backbone; full: all")
    p.add_argument("--seed", type=int_arg("--seed", 0, MAX_SEED), help="random seed (default 0)")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--config", help="fine-tuning YAML (e.g. configs/finetune/paper.yaml)")
    p.add_argument("--force", action="store_true", help="overwrite a finished run in --out")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(func=handler("picomaml.cli.finetune:run"))

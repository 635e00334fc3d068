"""The parser of ``picomaml push RUN --repo OWNER/NAME [--dry-run DIR]``."""

from __future__ import annotations

import argparse

from picomaml.cli.common import handler


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``push`` command."""
    p = sub.add_parser(
        "push",
        help="upload a backbone or an NER run to the Hugging Face Hub, with a model card",
        description="RUN: a Pico folder, a pretraining run dir (its latest checkpoint), a "
        "checkpoints/step_N folder, or a fine-tuning run dir. The repository's root loads with "
        "transformers (trust_remote_code=True) and as hf:OWNER/NAME; an NER run adds ner/ "
        "(CRF head, finetune.yaml, run.json, results.json); README.md is a generated model card. "
        "Needs huggingface_hub and a write token (hf auth login, or HF_TOKEN).",
    )
    p.add_argument("run", metavar="RUN")
    p.add_argument("--repo", required=True, metavar="OWNER/NAME", help="Hub model repository")
    p.add_argument(
        "--dry-run",
        metavar="DIR",
        default=None,
        help="write the repository folder (model card included) into DIR and upload nothing",
    )
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.set_defaults(func=handler("picomaml.cli.push:run"))

"""CLI: ``picomaml push RUN --repo OWNER/NAME [--dry-run DIR]``: publish to the Hugging Face Hub."""

from __future__ import annotations

import argparse


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
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from picomaml.publish.push import push

    staged, commit = push(args.run, args.repo, dry_run=args.dry_run, private=args.private)
    what = f"{staged.kind}, {len(staged.files)} files"
    if commit is None:
        print(f"dry run: {staged.folder} ({what}); nothing uploaded")
    else:
        print(f"pushed {args.run} to hf:{args.repo} ({what}), commit {commit}")
    return 0

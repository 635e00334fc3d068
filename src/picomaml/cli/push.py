"""What ``picomaml push`` does: publish a run to the Hugging Face Hub (parser:
:mod:`picomaml.cli.parsers.push`)."""

from __future__ import annotations

import argparse

from picomaml.publish.push import push


def run(args: argparse.Namespace) -> int:
    staged, commit = push(args.run, args.repo, dry_run=args.dry_run, private=args.private)
    what = f"{staged.kind}, {len(staged.files)} files"
    if commit is None:
        print(f"dry run: {staged.folder} ({what}); nothing uploaded")
    else:
        print(f"pushed {args.run} to hf:{args.repo} ({what}), commit {commit}")
    return 0

"""What ``picomaml finetune`` does: train a CRF NER head, or the whole model, on a UNER
source (parser: :mod:`picomaml.cli.parsers.finetune`)."""

from __future__ import annotations

import argparse

from picomaml.cli.common import data_root
from picomaml.ner.config import load_finetune_config
from picomaml.ner.finetune import finetune


def run(args: argparse.Namespace) -> int:
    # Flags win over the file and are taken literally (a path is never parsed as YAML).
    flags = {key: getattr(args, key) for key in ("backbone", "source", "regime", "seed")}
    cfg = load_finetune_config(args.config or None, list(args.overrides), flags)
    out = finetune(cfg, args.out, data_root=data_root(args), overwrite=args.force, progress=None)
    print(out)
    return 0

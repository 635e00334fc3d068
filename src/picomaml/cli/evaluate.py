"""What ``picomaml evaluate RUN_DIR`` does: zero-shot and in-language NER scores (parser:
:mod:`picomaml.cli.parsers.evaluate`)."""

from __future__ import annotations

import argparse

from picomaml.cli.common import data_root
from picomaml.ner.evaluate import evaluate_run


def run(args: argparse.Namespace) -> int:
    path = evaluate_run(
        args.run_dir,
        datasets=args.datasets,
        data_root=data_root(args),
        n_resamples=args.n_resamples,
        seed=args.seed,
        device=args.device,
        progress=None,
    )
    print(path)
    return 0

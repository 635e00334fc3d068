"""CLI: ``picomaml bench pretrain`` and ``picomaml bench ner`` (speed benchmarks).

Benchmarks are measurements, not timed tests: they write a JSON report (``--out``)
and print a summary. Each is imported only when asked for, so ``bench ner`` does
not pay for importing the pretraining stack and vice versa.
"""

from __future__ import annotations

import argparse

from picomaml.cli.common import data_root
from picomaml.config import SIZES


def _pretrain(args: argparse.Namespace) -> int:
    from picomaml.pretrain.bench import main

    # Without a data root the bench uses a synthetic token pool (timings do not depend on
    # token identities).
    data_dir = data_root(args, required=False)
    main(
        size=args.size,
        out=args.out,
        data_dir=data_dir,
        device=args.device,
        ways=args.ways,
        seq_len=args.seq_len,
        warmup=args.warmup,
        iters=args.iters,
        peak=args.peak_tflops,
    )
    return 0


def _ner(args: argparse.Namespace) -> int:
    from picomaml.ner.bench import main

    return int(main(args) or 0)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command with its ``pretrain`` and ``ner`` subcommands."""
    parser = sub.add_parser("bench", help="speed benchmarks (JSON reports)")
    which = parser.add_subparsers(dest="bench", metavar="BENCH")
    parser.set_defaults(func=lambda a: parser.print_help() or 2)

    p = which.add_parser(
        "pretrain",
        help="AR vs first-order MAML micro-batch throughput at equal token counts",
    )
    p.add_argument("--size", default="tiny", choices=list(SIZES))
    p.add_argument("--out", default=None, help="write the JSON report here")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument(
        "--ways", type=int, default=None, help="episode ways (default 32 on CUDA, 8 on CPU)"
    )
    p.add_argument("--seq-len", type=int, default=2048, help="AR row length (default 2048)")
    p.add_argument(
        "--warmup", type=int, default=None, help="untimed iterations per branch (2 CUDA, 1 CPU)"
    )
    p.add_argument(
        "--iters", type=int, default=None, help="timed iterations per branch (5 CUDA, 3 CPU)"
    )
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="device peak (TFLOP/s) for the MFU; default: the bf16 data-sheet peak of known GPUs",
    )
    p.set_defaults(func=_pretrain)

    n = which.add_parser("ner", help="NER benchmarks (CRF, cached-feature head training)")
    n.add_argument("--out", default=None, help="write the JSON report here")
    n.add_argument("--quick", action="store_true", help="smaller sizes for a fast check")
    n.add_argument("--iters", type=int, default=None, help="timed iterations")
    n.set_defaults(func=_ner)

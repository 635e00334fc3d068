"""What the study commands do: ``picomaml grid``, ``report`` and ``demo`` (parsers:
:mod:`picomaml.cli.parsers.study`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from picomaml.cli.common import data_root, explicit_data_dir
from picomaml.data.download import ensure_data
from picomaml.study.config import load_grid
from picomaml.study.demo import run_demo
from picomaml.study.grid import parse_shard, run_grid
from picomaml.study.plan import describe
from picomaml.study.report import write_report


def grid_command(args: argparse.Namespace) -> int:
    cfg = load_grid(args.config, args.overrides)
    results = Path(args.results) if args.results else Path("results") / cfg.name
    shard = parse_shard(args.shard) if args.shard else (0, 1)
    if args.dry_run:
        print("\n".join(describe(cfg, results, data_root(args, required=False))))
        print("dry run: the config is valid; nothing was fetched, written or run")
        return 0
    summary = run_grid(
        cfg, results, shard=shard, workers=args.workers, data_root=data_root(args, required=False)
    )
    print(summary.line())
    print(f"results: {results}/cells/  (report: picomaml report {results})")
    return 1 if summary.failed else 0


def report_command(args: argparse.Namespace) -> int:
    print(write_report(Path(args.results_dir), data_root=data_root(args, required=False)))
    return 0


def demo_command(args: argparse.Namespace) -> int:
    # The demo is the set-up-everything command, so it alone fetches missing data (first
    # use); every other command stops with a line naming `picomaml data download`.
    def say(msg: str) -> None:
        print(f"demo: {msg}", file=sys.stderr, flush=True)

    root = ensure_data(explicit_data_dir(args), log=say)
    path = run_demo(args.out, data_root=root, config=args.config, workers=args.workers)
    print(f"report: {path}")
    return 0

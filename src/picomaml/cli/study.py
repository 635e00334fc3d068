"""CLI: picomaml grid / report / demo."""

from __future__ import annotations

import argparse
from pathlib import Path

from picomaml.cli.common import data_root, explicit_data_dir, int_arg

#: Most worker processes a grid starts (each holds a model; more only thrash).
MAX_WORKERS = 256


def _grid(args: argparse.Namespace) -> int:
    from picomaml.study.config import load_grid
    from picomaml.study.grid import parse_shard, run_grid

    cfg = load_grid(args.config, args.overrides)
    results = Path(args.results) if args.results else Path("results") / cfg.name
    shard = parse_shard(args.shard) if args.shard else (0, 1)
    if args.dry_run:
        from picomaml.study.plan import describe

        print("\n".join(describe(cfg, results, data_root(args, required=False))))
        print("dry run: the config is valid; nothing was fetched, written or run")
        return 0
    summary = run_grid(
        cfg, results, shard=shard, workers=args.workers, data_root=data_root(args, required=False)
    )
    print(summary.line())
    print(f"results: {results}/cells/  (report: picomaml report {results})")
    return 1 if summary.failed else 0


def _report(args: argparse.Namespace) -> int:
    from picomaml.study.report import write_report

    print(write_report(Path(args.results_dir), data_root=data_root(args, required=False)))
    return 0


def _demo(args: argparse.Namespace) -> int:
    import sys

    from picomaml.data.download import ensure_data
    from picomaml.study.demo import run_demo

    # The demo is the set-up-everything command, so it alone fetches missing data (first
    # use); every other command stops with a line naming `picomaml data download`.
    def say(msg: str) -> None:
        print(f"demo: {msg}", file=sys.stderr, flush=True)

    root = ensure_data(explicit_data_dir(args), log=say)
    path = run_demo(args.out, data_root=root, config=args.config, workers=args.workers)
    print(f"report: {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the study commands."""
    p = sub.add_parser(
        "grid",
        help="run an experiment grid (fine-tune + evaluate every cell)",
        description="Run every unfinished cell of a study grid into RESULTS/cells/<cell_id>/. "
        "Finished cells (results.json) are skipped; a failing cell writes error.json and "
        "the grid continues. Exit status 1 if any cell of this shard failed.",
    )
    p.add_argument("config", help="grid YAML, e.g. configs/study/paper.yaml")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides of the grid YAML")
    p.add_argument("--results", help="results dir (default results/<grid name>)")
    p.add_argument(
        "--shard",
        help="i/n: run only share i (0-based) of n, e.g. "
        "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT",
    )
    p.add_argument(
        "--workers",
        type=int_arg("--workers", 1, MAX_WORKERS),
        default=1,
        help="cells run in parallel (processes)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the grid and list its cells and ablations; fetch, write and run nothing",
    )
    p.add_argument("--data-dir", dest="sub_data_dir", help="data root (same as the global flag)")
    p.set_defaults(func=_grid)

    p = sub.add_parser(
        "report",
        help="write RESULTS_DIR/report.md with tables and figures",
        description="Regenerate report.md, figures/*.png and tables/*.json from local result "
        "files only.",
    )
    p.add_argument("results_dir", help="a grid results dir (holds cells/ and grid.yaml)")
    p.add_argument("--data-dir", dest="sub_data_dir", help="data root (same as the global flag)")
    p.set_defaults(func=_report)

    p = sub.add_parser(
        "demo",
        help="the study in miniature (CPU, ~15 min; fetches missing data on first use)",
        description="Pretrain vanilla and MAML demo backbones, fine-tune and evaluate the "
        "demo grid, write the report and print its path. Reruns reuse finished work. When the "
        "data root lacks UNER files or the corpus, they are fetched first as `picomaml data "
        "download` does (needs internet once).",
    )
    p.add_argument("--out", default="results/demo", help="results dir (default results/demo)")
    p.add_argument("--config", default="configs/study/demo.yaml", help="the demo grid YAML")
    p.add_argument(
        "--workers",
        type=int_arg("--workers", 1, MAX_WORKERS),
        default=1,
        help="grid cells run in parallel",
    )
    p.add_argument("--data-dir", dest="sub_data_dir", help="data root (same as the global flag)")
    p.set_defaults(func=_demo)

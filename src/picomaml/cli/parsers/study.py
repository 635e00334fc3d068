"""The parsers of the study commands: ``picomaml grid``, ``report`` and ``demo``."""

from __future__ import annotations

import argparse

from picomaml.cli.common import handler, int_arg

#: Most worker processes a grid starts (each holds a model; more only thrash).
MAX_WORKERS = 256


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
    p.set_defaults(func=handler("picomaml.cli.study:grid_command"))

    p = sub.add_parser(
        "report",
        help="write RESULTS_DIR/report.md with tables and figures",
        description="Regenerate report.md, figures/*.png and tables/*.json from local result "
        "files only.",
    )
    p.add_argument("results_dir", help="a grid results dir (holds cells/ and grid.yaml)")
    p.add_argument("--data-dir", dest="sub_data_dir", help="data root (same as the global flag)")
    p.set_defaults(func=handler("picomaml.cli.study:report_command"))

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
    p.set_defaults(func=handler("picomaml.cli.study:demo_command"))

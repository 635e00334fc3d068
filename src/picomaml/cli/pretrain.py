"""What ``picomaml pretrain`` does: hybrid AR + first-order MAML pretraining on Fabric
(parser: :mod:`picomaml.cli.parsers.pretrain`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightning.fabric.utilities.rank_zero import rank_zero_only

from picomaml.cli.common import data_root
from picomaml.layout import read_latest
from picomaml.pretrain.config import load_pretrain_config
from picomaml.pretrain.trainer import run_pretraining


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    """Launch flags as config overrides, so they are validated and recorded like any key."""
    out = []
    if args.devices is not None:
        out.append(f"runtime.devices={args.devices}")
    if args.num_nodes is not None:
        out.append(f"runtime.num_nodes={args.num_nodes}")
    if args.strategy is not None:
        out.append(f"runtime.strategy={args.strategy}")
    if args.accelerator is not None:
        out.append(f"runtime.accelerator={args.accelerator}")
    if args.precision is not None:
        out.append(f"training.precision={args.precision}")
    return out


def run(args: argparse.Namespace) -> int:
    cfg = load_pretrain_config(args.config, list(args.overrides) + _flag_overrides(args))
    run_dir = Path(args.run_dir or Path("runs") / "pretrain" / Path(args.config).stem)
    run_pretraining(
        cfg,
        run_dir,
        resume=args.resume,
        data_root=data_root(args),
        stop_at_step=args.stop_at_step,
        init_from=Path(args.init_from) if args.init_from else None,
    )
    latest = read_latest(run_dir / cfg.checkpointing.dir)
    if getattr(rank_zero_only, "rank", 0) == 0 and latest is not None:  # once, not per rank
        print(f"pretraining done: {run_dir} (latest checkpoint {latest})")
    return 0

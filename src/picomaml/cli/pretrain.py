"""CLI: ``picomaml pretrain`` (hybrid AR + first-order MAML pretraining on Fabric)."""

from __future__ import annotations

import argparse
from pathlib import Path

from picomaml.cli.common import int_arg


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``pretrain`` command."""
    p = sub.add_parser(
        "pretrain",
        help="hybrid AR + MAML pretraining of a Pico decoder",
        description=(
            "Pretrain a Pico decoder as the config says (see docs/pretraining-run.md). "
            "--devices/--num-nodes/--strategy/--precision/--accelerator override the "
            "config's runtime section and are passed to Lightning Fabric, so torchrun and "
            "SLURM launches work as Fabric documents."
        ),
    )
    p.add_argument(
        "--config", required=True, help="YAML config, e.g. configs/pretrain/maml-tiny.yaml"
    )
    p.add_argument(
        "--run-dir", default=None, help="output folder (default: runs/pretrain/<config name>)"
    )
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/latest")
    p.add_argument("--devices", default=None, help="devices per node: an integer, -1 or 'auto'")
    p.add_argument(
        "--num-nodes", type=int_arg("--num-nodes", 1), default=None, help="number of nodes"
    )
    p.add_argument("--strategy", default=None, help="auto, ddp, fsdp or single_device")
    p.add_argument(
        "--precision", default=None, help="auto, 32-true, bf16-mixed, 16-mixed, bf16-true"
    )
    p.add_argument("--accelerator", default=None, help="auto, cpu, cuda, gpu or mps")
    p.add_argument(
        "--stop-at-step",
        type=int_arg("--stop-at-step", 1),
        default=None,
        help="end after this optimizer step's checkpoint (schedule unchanged; --resume later)",
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="branch from another run's checkpoint (checkpoints/step_N with its trainer "
        "state): weights, optimizer, schedule and data position continue under this config",
    )
    p.add_argument("overrides", nargs="*", help="config overrides section.key=value")
    p.set_defaults(func=_run)


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


def _run(args: argparse.Namespace) -> int:
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from picomaml.cli.common import data_root
    from picomaml.layout import read_latest
    from picomaml.pretrain.config import load_pretrain_config
    from picomaml.pretrain.trainer import run_pretraining

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

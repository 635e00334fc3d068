"""The parser of ``picomaml pretrain``."""

from __future__ import annotations

import argparse

from picomaml.cli.common import handler, int_arg


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
    p.set_defaults(func=handler("picomaml.cli.pretrain:run"))

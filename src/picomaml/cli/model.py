"""What ``picomaml model`` does: ``info`` (configuration and parameter counts of the Pico
tiers), ``list-checkpoints`` and ``fetch`` (published backbones on the Hugging Face Hub),
``export`` (make existing folders loadable by ``transformers``). Parser:
:mod:`picomaml.cli.parsers.model`."""

from __future__ import annotations

import argparse
import json

from picomaml.config import SIZES
from picomaml.model import config_dict, config_for, count_parameters, read_pico_config
from picomaml.model.export import export
from picomaml.model.hub import fetch_checkpoint, list_checkpoints


def info_command(args: argparse.Namespace) -> int:
    """Counts come from :func:`count_parameters`, so no tier is allocated."""
    sizes = [args.size] if args.size else list(SIZES)
    rows = {}
    for size in sizes:
        config = config_for(size)
        rows[size] = {
            "config": config_dict(config),
            "head_dim": config.head_dim,
            "ffn_width": config.hidden_dim,
            "parameters": count_parameters(config),
        }
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for size, row in rows.items():
        cfg, n = row["config"], row["parameters"]
        print(
            f"{size:<7} d_model={cfg['d_model']:<5} layers={cfg['n_layers']} "
            f"heads={cfg['n_heads']}/{cfg['n_kv_heads']}kv (width {row['head_dim']}) "
            f"ffn={row['ffn_width']:<5} vocab={cfg['vocab_size']} window={cfg['max_seq_len']}  "
            f"params total={n['total']:,} embedding={n['embedding']:,} "
            f"non-embedding={n['non_embedding']:,}"
        )
    return 0


def list_checkpoints_command(args: argparse.Namespace) -> int:
    """Steps of a Hub repository, each with the reference that fetches it."""
    steps = list_checkpoints(args.reference)
    if args.json:
        rows = [{"step": s.step, "reference": str(s.ref), "commit": s.commit} for s in steps]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{args.reference}: {len(steps)} checkpoints (steps {steps[0].step}..{steps[-1].step})")
    for s in steps:
        print(f"{s.step:>8}  {s.ref}")
    return 0


def fetch_command(args: argparse.Namespace) -> int:
    """Download a Hub backbone's config.json and weights (then usable with HF_HUB_OFFLINE=1)."""
    ckpt = fetch_checkpoint(args.reference)
    config = read_pico_config(ckpt.folder)
    info = {**ckpt.provenance(), "folder": str(ckpt.folder), "config": config_dict(config)}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(
        f"{ckpt.ref}: commit {ckpt.commit}, d_model={config.d_model} vocab={config.vocab_size} "
        f"window={config.max_seq_len}, in {ckpt.folder}"
    )
    return 0


def export_command(args: argparse.Namespace) -> int:
    """Upgrade old Pico folders in place (see :mod:`picomaml.model.export`)."""
    for folder, rewritten in export(args.path):
        note = " (tensors renamed to pico_decoder.<name>)" if rewritten else ""
        print(f"exported {folder}{note}")
    return 0

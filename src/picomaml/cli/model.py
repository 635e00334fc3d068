"""CLI: ``picomaml model info`` — configuration and parameter counts of the Pico tiers."""

from __future__ import annotations

import argparse
import json

from picomaml.model import TIERS, config_dict, config_for, count_parameters


def _info(args: argparse.Namespace) -> int:
    """Counts come from :func:`count_parameters`, so no tier is allocated."""
    sizes = [args.size] if args.size else list(TIERS)
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


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``model info``."""
    p = sub.add_parser("model", help="model configuration and parameter counts")
    msub = p.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)
    info = msub.add_parser("info", help="print configuration and parameter counts")
    info.add_argument("--size", choices=list(TIERS), default=None, help="one tier (default: all)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=_info)

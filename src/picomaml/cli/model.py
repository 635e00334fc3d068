"""CLI: ``picomaml model info`` (configuration and parameter counts of the Pico tiers),
``model list-checkpoints`` and ``model fetch`` (published backbones on the Hugging Face Hub),
``model export`` (make existing folders loadable by ``transformers``)."""

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


def _list_checkpoints(args: argparse.Namespace) -> int:
    """Steps of a Hub repository, each with the reference that fetches it."""
    from picomaml.model.hub import list_checkpoints

    steps = list_checkpoints(args.reference)
    if args.json:
        rows = [{"step": s.step, "reference": str(s.ref), "commit": s.commit} for s in steps]
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{args.reference}: {len(steps)} checkpoints (steps {steps[0].step}..{steps[-1].step})")
    for s in steps:
        print(f"{s.step:>8}  {s.ref}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    """Download a Hub backbone's config.json and weights (then usable with HF_HUB_OFFLINE=1)."""
    from picomaml.model import read_pico_config
    from picomaml.model.hub import fetch_checkpoint

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


def _export(args: argparse.Namespace) -> int:
    """Upgrade old Pico folders in place (see :mod:`picomaml.model.export`)."""
    from picomaml.model.export import export

    for folder, rewritten in export(args.path):
        note = " (tensors renamed to pico_decoder.<name>)" if rewritten else ""
        print(f"exported {folder}{note}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``model info``, ``model list-checkpoints``, ``model fetch`` and ``model export``."""
    p = sub.add_parser("model", help="model configuration and parameter counts")
    msub = p.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)
    info = msub.add_parser("info", help="print configuration and parameter counts")
    info.add_argument("--size", choices=list(TIERS), default=None, help="one tier (default: all)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=_info)
    ls = msub.add_parser(
        "list-checkpoints",
        help="list the checkpoints (steps) of a Hugging Face Hub repository",
        description="Folders checkpoints/step_N, or the 'Saving HF Model -- Step N' commits "
        "of a branch (e.g. hf:pico-lm/pico-decoder-tiny@pico-decoder-tiny-1).",
    )
    ls.add_argument("reference", help="hf:OWNER/REPO[@REVISION][/SUBFOLDER]")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=_list_checkpoints)
    fetch = msub.add_parser(
        "fetch",
        help="download a Hub backbone's config.json and weights into the Hugging Face cache",
        description="Only config.json and model.safetensors are downloaded; afterwards the "
        "same reference works with HF_HUB_OFFLINE=1.",
    )
    fetch.add_argument("reference", help="hf:OWNER/REPO[@REVISION][/SUBFOLDER]")
    fetch.add_argument("--json", action="store_true", help="machine-readable output")
    fetch.set_defaults(func=_fetch)
    exp = msub.add_parser(
        "export",
        help="make checkpoints loadable by transformers (AutoModelForCausalLM), in place",
        description="Adds the modeling file, tokenizer and generation_config.json, and auto_map "
        "to config.json, keeping every other key (vocab_size, window). PATH: a Pico folder, a "
        "pretraining run dir (every checkpoints/step_N) or a full-regime fine-tuning run dir.",
    )
    exp.add_argument("path", metavar="PATH")
    exp.set_defaults(func=_export)

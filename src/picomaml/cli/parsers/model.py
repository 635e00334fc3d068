"""The parser of ``picomaml model``: ``info``, ``list-checkpoints``, ``fetch``, ``export``."""

from __future__ import annotations

import argparse

from picomaml.cli.common import handler
from picomaml.config import SIZES


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``model info``, ``model list-checkpoints``, ``model fetch`` and ``model export``."""
    p = sub.add_parser("model", help="model configuration and parameter counts")
    msub = p.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)
    info = msub.add_parser("info", help="print configuration and parameter counts")
    info.add_argument("--size", choices=list(SIZES), default=None, help="one tier (default: all)")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=handler("picomaml.cli.model:info_command"))
    ls = msub.add_parser(
        "list-checkpoints",
        help="list the checkpoints (steps) of a Hugging Face Hub repository",
        description="Folders checkpoints/step_N, or the 'Saving HF Model -- Step N' commits "
        "of a branch (e.g. hf:pico-lm/pico-decoder-tiny@pico-decoder-tiny-1).",
    )
    ls.add_argument("reference", help="hf:OWNER/REPO[@REVISION][/SUBFOLDER]")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=handler("picomaml.cli.model:list_checkpoints_command"))
    fetch = msub.add_parser(
        "fetch",
        help="download a Hub backbone's config.json and weights into the Hugging Face cache",
        description="Only config.json and model.safetensors are downloaded; afterwards the "
        "same reference works with HF_HUB_OFFLINE=1.",
    )
    fetch.add_argument("reference", help="hf:OWNER/REPO[@REVISION][/SUBFOLDER]")
    fetch.add_argument("--json", action="store_true", help="machine-readable output")
    fetch.set_defaults(func=handler("picomaml.cli.model:fetch_command"))
    exp = msub.add_parser(
        "export",
        help="make checkpoints loadable by transformers (AutoModelForCausalLM), in place",
        description="Adds the modeling file, tokenizer and generation_config.json, and auto_map "
        "to config.json, keeping every other key (vocab_size, window). PATH: a Pico folder, a "
        "pretraining run dir (every checkpoints/step_N) or a full-regime fine-tuning run dir.",
    )
    exp.add_argument("path", metavar="PATH")
    exp.set_defaults(func=handler("picomaml.cli.model:export_command"))

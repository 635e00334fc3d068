"""CLI: ``picomaml probe BACKBONE`` — few-shot SMLMT probe of one or every checkpoint.

The output JSON (``RUN_DIR/probe.json`` for a pretraining run dir, or ``--out``) holds
the settings, the chance level and one entry per scored checkpoint; the report's probe
analysis reads it. Scoring the same checkpoint again replaces its entry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from picomaml.errors import PicomamlError

if TYPE_CHECKING:
    from picomaml.ner.backbone import ResolvedBackbone
    from picomaml.pretrain.probe import ProbeTarget


def _target(resolved: ResolvedBackbone, step: int | None) -> ProbeTarget:
    """A resolved backbone as a probe target, named by its pinned Hub reference if it has one."""
    from picomaml.pretrain.probe import ProbeTarget  # torch: imported when the command runs

    name = str(resolved.hub["pinned"]) if resolved.hub else str(resolved.folder)
    return ProbeTarget(resolved.folder, step, name)


def _training_rule(run_dir: Path | None) -> dict[str, object]:
    """The probed run's candidate-word rule (``meta.max_word_frequency``, ``heldout_share``)
    from its ``config.yaml``, so the probe's classes follow the rule training used."""
    from picomaml.config import load_yaml
    from picomaml.layout import PRETRAIN_CONFIG

    if run_dir is None or not (run_dir / PRETRAIN_CONFIG).is_file():
        return {}
    meta = load_yaml(run_dir / PRETRAIN_CONFIG).get("meta") or {}
    return {k: meta[k] for k in ("max_word_frequency", "heldout_share") if k in meta}


def _probe(args: argparse.Namespace) -> int:
    from picomaml.cli.common import data_root
    from picomaml.data.tokenizer import load_tokenizer
    from picomaml.layout import CHECKPOINTS, PICO_WEIGHTS, step_dirs
    from picomaml.model.hub import is_hub_ref, list_checkpoints
    from picomaml.ner.backbone import resolve_backbone
    from picomaml.pretrain.config import resolve_data_path
    from picomaml.pretrain.probe import (
        DEFAULT_CORPUS,
        TRAIN_CORPUS,
        ProbeSettings,
        ProbeTarget,
        default_probe_path,
        run_probe,
        with_overrides,
    )

    root = data_root(args)
    out = Path(args.out) if args.out else None
    variant = None
    run_dir = None
    if args.all_checkpoints and is_hub_ref(args.backbone):
        if out is None:
            raise PicomamlError(
                f"--all-checkpoints of {args.backbone} needs --out FILE (a Hub repository has "
                "no run dir to hold probe.json)"
            )
        steps = list_checkpoints(args.backbone)
        print(f"probe: {len(steps)} checkpoints of {args.backbone}", file=sys.stderr)
        targets = [_target(resolve_backbone(str(s.ref)), s.step) for s in steps]
    else:
        resolved = resolve_backbone(args.backbone)
        variant, run_dir = resolved.variant, resolved.run_dir
        if args.all_checkpoints:
            if resolved.run_dir is None:
                raise PicomamlError(
                    f"--all-checkpoints needs a pretraining run dir (with checkpoints/) or a "
                    f"Hub repository (hf:OWNER/REPO[/checkpoints]), got {args.backbone}"
                )
            ckpts = resolved.run_dir / CHECKPOINTS
            targets = [ProbeTarget.local(f) for _, f in step_dirs(ckpts, PICO_WEIGHTS)]
        else:
            targets = [_target(resolved, resolved.step)]
        if out is None and resolved.run_dir is not None:
            out = default_probe_path(resolved.run_dir)

    settings = with_overrides(
        ProbeSettings(**_training_rule(run_dir)),
        ways=args.ways,
        shots=args.shots,
        queries=args.queries,
        episodes=args.episodes,
        window=args.window,
        seed=args.seed,
        representation=args.representation,
        output_init=args.output_init,
        inner_steps=args.inner_steps,
        inner_lr=args.inner_lr,
        words=args.words or ("training" if args.split == "train" else None),
        heldout_share=args.heldout_share,
        max_word_frequency=args.max_word_frequency,
        min_word_count=args.min_word_count,
        separate_documents=None if args.documents is None else args.documents == "separate",
        pool_tokens=args.pool_tokens or (1_000_000 if args.split == "train" else None),
    )
    settings.meta()  # validates the values with the config's messages
    corpus_name = args.corpus or (TRAIN_CORPUS if args.split == "train" else DEFAULT_CORPUS)
    run_probe(
        targets,
        settings=settings,
        corpus=resolve_data_path(corpus_name, root, "--corpus"),
        corpus_name=corpus_name,
        tokenizer=load_tokenizer(root),
        variant=variant,
        out=out,
    )
    if out is not None:
        print(f"wrote {out}")
    else:
        print("not written: the backbone is not in a run dir; pass --out", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``probe``."""
    p = sub.add_parser(
        "probe",
        help="few-shot SMLMT probe of a backbone (prototype and adapted-head accuracy)",
        description=(
            "Score held-out N-way K-shot SMLMT episodes (drawn from a held-out corpus file, "
            "the same episodes for every backbone): nearest-prototype accuracy with no "
            "training, and accuracy after the paper's inner loop with a fixed fresh head. "
            "Each figure with a 95%% interval over episodes and the chance level."
        ),
    )
    p.add_argument(
        "backbone",
        help="Pico folder, pretraining run dir, checkpoints/step_N or hf:OWNER/REPO[@REV][/SUB]",
    )
    p.add_argument("--ways", type=int, default=None, help="classes per episode (default 32)")
    p.add_argument("--shots", type=int, default=None, help="support windows per class (4)")
    p.add_argument("--queries", type=int, default=None, help="query windows per class (4)")
    p.add_argument("--episodes", type=int, default=None, help="episodes (default 200)")
    p.add_argument("--window", type=int, default=None, help="tokens per window (128)")
    p.add_argument("--seed", type=int, default=None, help="episode seed (0)")
    p.add_argument(
        "--split",
        choices=["valid", "train"],
        default="valid",
        help="valid (default: held-out rows) or train (the training corpus's first "
        "--pool-tokens tokens and training words: how well the training task is solved)",
    )
    p.add_argument(
        "--words",
        choices=["held-out", "training", "all"],
        default=None,
        help="class words: held-out (default: never an SMLMT class in pretraining), "
        "training, or all (the version-1 probe)",
    )
    p.add_argument(
        "--heldout-share",
        type=float,
        default=None,
        help="share of words held out (default: the run's meta.heldout_share, else 0.1)",
    )
    p.add_argument(
        "--max-word-frequency",
        type=float,
        default=None,
        help="candidate words' frequency cap (default: the run's meta.max_word_frequency, "
        "else 5e-4; the version-1 probe used 5e-3)",
    )
    p.add_argument("--min-word-count", type=int, default=None, help="minimum count (8)")
    p.add_argument(
        "--documents",
        choices=["separate", "any"],
        default=None,
        help="separate (default: support and query of a class from different documents) "
        "or any (the version-1 probe)",
    )
    p.add_argument(
        "--pool-tokens", type=int, default=None, help="tokens indexed (all; 1,000,000 for train)"
    )
    p.add_argument(
        "--corpus",
        default=None,
        help="held-out corpus file (default: the data root's corpus/english-mini/valid.jsonl.gz)",
    )
    p.add_argument(
        "--representation",
        choices=["mask", "last", "after_mask", "before_mask"],
        default=None,
        help="window feature (default mask; before_mask never sees the [MASK] token)",
    )
    p.add_argument(
        "--output-init",
        choices=["prototypes", "zeros", "xavier", "persistent"],
        default=None,
        help="output layer of the fresh head (default prototypes)",
    )
    p.add_argument("--inner-steps", type=int, default=None, help="inner SGD steps (10)")
    p.add_argument("--inner-lr", type=float, default=None, help="inner learning rate (1e-3)")
    p.add_argument(
        "--all-checkpoints",
        action="store_true",
        help="score every checkpoint of the run dir, or of a Hub repository (needs --out)",
    )
    p.add_argument("--out", default=None, help="JSON file (default RUN_DIR/probe.json)")
    p.set_defaults(func=_probe)

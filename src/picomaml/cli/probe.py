"""What ``picomaml probe BACKBONE`` does: the few-shot SMLMT probe of one or every checkpoint
(parser: :mod:`picomaml.cli.parsers.probe`).

The output JSON (``RUN_DIR/probe.json`` for a pretraining run dir, or ``--out``) holds
the settings, the chance level and one entry per scored checkpoint; the report's probe
analysis reads it. Scoring the same checkpoint again replaces its entry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from picomaml.cli.common import data_root
from picomaml.config import load_yaml
from picomaml.data.paths import resolve_data_path
from picomaml.data.tokenizer import load_tokenizer
from picomaml.errors import PicomamlError
from picomaml.layout import PRETRAIN_CONFIG
from picomaml.model.backbone import ResolvedBackbone, local_checkpoints, resolve_backbone
from picomaml.model.hub import is_hub_ref, list_checkpoints
from picomaml.pretrain.probe import (
    DEFAULT_CORPUS,
    TRAIN_CORPUS,
    ProbeSettings,
    ProbeTarget,
    default_probe_path,
    run_probe,
    with_overrides,
)


def _target(resolved: ResolvedBackbone, step: int | None) -> ProbeTarget:
    """A resolved backbone as a probe target, named by its pinned Hub reference if it has one."""
    name = str(resolved.hub["pinned"]) if resolved.hub else str(resolved.folder)
    return ProbeTarget(resolved.folder, step, name)


def _training_rule(run_dir: Path | None) -> dict[str, object]:
    """The probed run's candidate-word rule (``meta.max_word_frequency``, ``heldout_share``)
    from its ``config.yaml``, so the probe's classes follow the rule training used."""
    if run_dir is None or not (run_dir / PRETRAIN_CONFIG).is_file():
        return {}
    meta = load_yaml(run_dir / PRETRAIN_CONFIG).get("meta") or {}
    return {k: meta[k] for k in ("max_word_frequency", "heldout_share") if k in meta}


def run(args: argparse.Namespace) -> int:
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
            targets = [ProbeTarget.local(f) for _, f in local_checkpoints(resolved.run_dir)]
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
        corpus=resolve_data_path(corpus_name, root),
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

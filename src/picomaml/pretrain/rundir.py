"""The pretraining RUN_DIR before the first step: fresh start or resume, and the checks that
keep a resumed run the same run (layout in :mod:`picomaml.layout`); who owns it while the run
lasts (:func:`run_dir_lock`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lightning.fabric import Fabric

from picomaml import layout
from picomaml.config import load_yaml, save_config, to_dict
from picomaml.errors import PicomamlError
from picomaml.fileio import iter_jsonl, remove_stale_temp_dirs, remove_stale_temps, write_jsonl
from picomaml.locks import folder_lock
from picomaml.pretrain import checkpoint as ckpt
from picomaml.pretrain.config import PretrainConfig

# Config sections whose change would make a resumed run a different run.
_RESUME_KEYS = ("model", "data", "training", "meta")
_RESUME_IGNORED = {("training", "precision")}
#: What a run dir written before a key existed did, for keys added later: a missing key
#: is compared as this value (a run from before the learners ran ``query_only`` and held
#: no words out), so resuming it asks for exactly those settings.
LEGACY_VALUES: dict[tuple[str, str], object] = {
    ("meta", "learner"): "query_only",
    ("meta", "metric"): "euclidean",
    ("meta", "logit_scale"): None,
    ("meta", "learn_logit_scale"): False,
    ("meta", "heldout_share"): 0.0,
}


def check_same_run(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Resuming with a different model/data/training/meta config is an error naming keys."""
    diffs = []
    for section in _RESUME_KEYS:
        a, b = saved.get(section, {}), current.get(section, {})
        for key in sorted(set(a) | set(b)):
            if (section, key) in _RESUME_IGNORED:
                continue
            va = a.get(key, LEGACY_VALUES.get((section, key)))
            vb = b.get(key)
            if isinstance(va, tuple):
                va = list(va)
            if isinstance(vb, tuple):
                vb = list(vb)
            if va != vb:
                diffs.append(f"{section}.{key}: {va!r} in the run, {vb!r} now")
    if diffs:
        raise PicomamlError(
            f"cannot resume: the config differs from {path} ({'; '.join(diffs)}); "
            "resume with the same settings or start a new --run-dir"
        )


def truncate_metrics(path: Path, step: int) -> None:
    """Keep only records up to ``step`` (a resumed run rewrites what came after)."""
    if not path.is_file():
        return
    write_jsonl(path, [r for r in iter_jsonl(path) if int(r.get("step", 0)) <= step])


def checkpoint_root(cfg: PretrainConfig, run_dir: Path) -> Path:
    """``RUN_DIR/<checkpointing.dir>`` (``checkpoints`` unless configured)."""
    return run_dir / cfg.checkpointing.dir


def resume_point(cfg: PretrainConfig, run_dir: Path, resume: bool) -> Path | None:
    """The checkpoint to continue from (``None``: start fresh); refuses to overwrite a run
    without ``--resume`` and to resume with another config."""
    latest = ckpt.latest_checkpoint(checkpoint_root(cfg, run_dir))
    if latest is not None and not resume:
        raise PicomamlError(
            f"{run_dir} already holds checkpoints (latest: {latest.name}); pass "
            "--resume to continue that run or choose another --run-dir"
        )
    saved = run_dir / layout.PRETRAIN_CONFIG
    if latest is not None and saved.is_file():
        check_same_run(load_yaml(saved), to_dict(cfg), saved)
    return latest


@contextlib.contextmanager
def run_dir_lock(fabric: Fabric, run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock (:mod:`picomaml.locks`) for the run: rank 0 takes it and every
    rank learns the outcome, so a second run on the same dir (two ``--resume`` jobs would
    append the same metrics twice) fails at once on every rank instead of waiting forever."""
    with contextlib.ExitStack() as stack:
        error = None
        if fabric.global_rank == 0:
            try:
                stack.enter_context(folder_lock(run_dir, "pretrain"))
            except PicomamlError as exc:
                error = str(exc)
        if fabric.world_size > 1:
            error = fabric.broadcast(error, src=0)
        if error is not None:
            raise PicomamlError(error)
        yield


def remove_stale_writes(cfg: PretrainConfig, run_dir: Path) -> None:
    """Delete what writers killed in this run dir left: temporary files and ``step_N.tmp``
    folders (rank 0, under the lock, so no writer can still be using them)."""
    remove_stale_temps(run_dir)
    remove_stale_temp_dirs(checkpoint_root(cfg, run_dir))


def write_run_start(cfg: PretrainConfig, run_dir: Path, resume_from: Path | None) -> None:
    """Record the resolved config and drop metrics logged after the resume point (rank 0)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_writes(cfg, run_dir)
    save_config(cfg, run_dir / layout.PRETRAIN_CONFIG)
    step = 0 if resume_from is None else layout.parse_step(resume_from.name) or 0
    truncate_metrics(run_dir / layout.METRICS, step)

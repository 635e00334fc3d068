"""Pretraining checkpoints: ``RUN_DIR/checkpoints/step_N/`` written atomically.

A checkpoint folder holds

* ``config.json`` + ``model.safetensors``: the backbone as a Hugging Face Pico folder
  (:func:`picomaml.model.save_pico`), so fine-tuning reads it directly;
* ``head.safetensors``: the meta-learned head body (MAML runs only);
* ``trainer_state.pt``: everything else needed to continue exactly: optimizer,
  scheduler, Python/NumPy/torch RNG states, the branch and episode generators, the
  data position, the step and the token count;
* ``learning_dynamics/`` when learning dynamics were recorded at that step.

Why atomic: a run killed while writing must never leave a half checkpoint that
``--resume`` would pick up. Everything goes to ``step_N.tmp/`` first, which is then
renamed to ``step_N``; the ``latest`` pointer (a text file holding ``step_N``) is
replaced the same way, last.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from picomaml import layout
from picomaml.errors import PicomamlError
from picomaml.fileio import atomic_dir, write_with
from picomaml.layout import step_dir
from picomaml.model import PicoDecoder, load_pico, save_pico

STATE_FILE = layout.TRAINER_STATE
HEAD_FILE = layout.META_HEAD
FORMAT_VERSION = 1


def capture_rng() -> dict[str, Any]:
    """Python, NumPy (global) and torch RNG states as plain, ``weights_only``-loadable data."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """A NumPy ``Generator``'s bit-generator state with arrays as lists (plain data)."""
    return _plain(rng.bit_generator.state)


def set_generator_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Restore what :func:`generator_state` captured."""
    rng.bit_generator.state = state


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def save_checkpoint(
    root: str | Path,
    step: int,
    model: PicoDecoder,
    head: nn.Module | None,
    trainer_state: dict[str, Any],
    *,
    extra: Callable[[Path], None] | None = None,
    keep_last: int | None = None,
    keep_state_last: int | None = None,
) -> Path:
    """Write ``root/step_N`` atomically and point ``root/latest`` at it.

    ``extra(folder)`` may add files (learning dynamics) before the folder is published.
    An existing ``step_N`` (left by a run that was resumed from an earlier step) is
    replaced. With ``keep_last`` only that many newest step folders are kept; with
    ``keep_state_last`` older folders keep their weights but lose the trainer state.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = step_dir(root, step)
    with atomic_dir(final) as tmp:
        save_pico(model, tmp)
        if head is not None:
            tensors = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
            write_with(
                tmp / HEAD_FILE, lambda p: save_file(tensors, str(p), metadata={"format": "pt"})
            )
        state = dict(trainer_state, step=step, format_version=FORMAT_VERSION)
        write_with(tmp / STATE_FILE, lambda p: torch.save(state, p))
        if extra is not None:
            extra(tmp)
    layout.write_latest(root, final)
    if keep_last is not None:
        for path in _older_steps(root, keep_last, keep=final.name):
            shutil.rmtree(path)
    if keep_state_last is not None:
        for path in _older_steps(root, keep_state_last, keep=final.name):
            (path / STATE_FILE).unlink(missing_ok=True)
    return final


def _older_steps(root: Path, newest: int, keep: str) -> list[Path]:
    """Step folders other than the ``newest`` N (by step number), never ``keep``."""
    return [path for _, path in layout.step_dirs(root)[:-newest] if path.name != keep]


def latest_checkpoint(root: str | Path) -> Path | None:
    """The folder named by ``root/latest``, or ``None`` when no checkpoint was written."""
    name = layout.read_latest(root)
    if name is None:
        return None
    folder = Path(root) / name
    if not (folder / STATE_FILE).is_file():
        raise PicomamlError(
            f"{Path(root) / layout.LATEST}: names {name!r}, which is not a complete checkpoint "
            f"folder (expected step_N with {STATE_FILE})"
        )
    return folder


def load_checkpoint(
    folder: str | Path,
) -> tuple[PicoDecoder, dict[str, torch.Tensor] | None, dict[str, Any]]:
    """Backbone, head state dict (or ``None``) and trainer state of a checkpoint folder."""
    folder = Path(folder)
    state_file = folder / STATE_FILE
    if not state_file.is_file():
        raise PicomamlError(f"{folder}: not a pretraining checkpoint (no {STATE_FILE})")
    model = load_pico(folder)
    head_file = folder / HEAD_FILE
    head = load_file(str(head_file)) if head_file.is_file() else None
    try:
        state = torch.load(state_file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        raise PicomamlError(f"{state_file}: cannot read the trainer state ({exc})") from exc
    if state.get("format_version") != FORMAT_VERSION:
        raise PicomamlError(
            f"{state_file}: format_version {state.get('format_version')!r}, "
            f"this picomaml reads {FORMAT_VERSION}"
        )
    return model, head, state


__all__ = [
    "capture_rng",
    "generator_state",
    "latest_checkpoint",
    "load_checkpoint",
    "restore_rng",
    "save_checkpoint",
    "set_generator_state",
    "step_dir",
]

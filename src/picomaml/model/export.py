"""``picomaml model export PATH``: make existing Pico folders loadable by ``transformers``.

Folders written before picomaml shipped :mod:`picomaml.model.hf_files` hold only
``config.json`` and ``model.safetensors``. Exporting adds the modeling file, the tokenizer
and ``generation_config.json`` and adds ``auto_map`` to ``config.json``, in place. Every
other key of config.json is kept, so the vocabulary size (50,304, or a published run's
50,281) and the window stay as they were; weights are rewritten only when their tensor
names are not ``pico_decoder.<name>`` (pico-train's older ``pico.`` prefix, a bare state
dict), because the modeling file reads that prefix.

``PATH`` may be a Pico folder, a pretraining run dir or its ``checkpoints/`` folder (every
``step_N``), or a full-regime fine-tuning run dir (its ``model/backbone``).
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open

from picomaml import layout
from picomaml.errors import PicomamlError
from picomaml.fileio import write_text
from picomaml.model.hf_files import write_hf_files
from picomaml.model.pico import HF_PREFIX
from picomaml.model.pico_files import _hf_config, load_pico, read_pico_config, save_pico


def export_targets(path: str | Path) -> list[Path]:
    """The Pico folders ``path`` stands for (see the module docstring), or an error."""
    path = Path(path)
    if not path.exists():
        raise PicomamlError(f"model export: {path} does not exist")
    if (path / layout.PICO_CONFIG).is_file():
        return [path]
    for root in (path / layout.CHECKPOINTS, path):
        steps = [folder for _, folder in layout.step_dirs(root, require=layout.PICO_CONFIG)]
        if steps:
            return steps
    if (path / layout.RUN_JSON).is_file() or (path / layout.FINETUNE_YAML).is_file():
        backbone = path / layout.BACKBONE_DIR
        if (backbone / layout.PICO_CONFIG).is_file():
            return [backbone]
        raise PicomamlError(
            f"model export: {path} is a head-regime fine-tuning run: it holds no backbone of its "
            "own (export the backbone its run.json names instead)"
        )
    raise PicomamlError(
        f"model export: {path} is not a Pico folder (no config.json), a pretraining run dir "
        "(no checkpoints/step_N) or a full-regime fine-tuning run dir"
    )


def _weight_names(weights: Path) -> list[str]:
    try:
        with safe_open(str(weights), framework="pt") as fh:
            return list(fh.keys())
    except Exception as exc:  # safetensors raises its own error types for bad files
        raise PicomamlError(f"{weights}: cannot read safetensors file ({exc})") from exc


def export_folder(folder: str | Path) -> bool:
    """Upgrade one Pico folder in place; True when its weights had to be rewritten."""
    folder = Path(folder)
    config = read_pico_config(folder)  # validates before anything is written
    weights = folder / layout.PICO_WEIGHTS
    if not weights.is_file():
        raise PicomamlError(f"model export: no {layout.PICO_WEIGHTS} in {folder}")
    rewrite = not all(name.startswith(HF_PREFIX) for name in _weight_names(weights))
    if rewrite:
        save_pico(load_pico(folder), folder)  # renames tensors; writes every file
    else:
        write_hf_files(folder, config.max_seq_len)
    raw = json.loads((folder / layout.PICO_CONFIG).read_text(encoding="utf-8"))
    merged = {**raw, **_hf_config(config)}
    write_text(folder / layout.PICO_CONFIG, json.dumps(merged, indent=2) + "\n")
    return rewrite


def export(path: str | Path) -> list[tuple[Path, bool]]:
    """Export every folder ``path`` stands for; ``(folder, weights rewritten)`` each."""
    return [(folder, export_folder(folder)) for folder in export_targets(path)]

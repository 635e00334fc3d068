"""The on-disk layouts of picomaml's folders, in one place (``docs/DESIGN.md``, "Run directories").

Every stage that reads or writes one of these folders names its files through this module,
so a layout is implemented once:

* a Pico HF folder: ``config.json`` + ``model.safetensors``, plus the files that make it
  load with ``transformers`` (modeling file, ``generation_config.json``, tokenizer);
* a pretraining ``RUN_DIR``: ``config.yaml``, ``metrics.jsonl`` and ``checkpoints/``, which
  holds ``step_N/`` folders and ``latest``, a text file naming the newest complete one;
* a fine-tuning ``RUN_DIR``: ``finetune.yaml``, ``train_log.jsonl``, ``model/``, ``run.json``,
  ``results.json``, ``predictions/{code}.iob2``, ``confidence/{code}.jsonl`` and, for
  ``sampling: balanced``, ``sampling.json``;
* a study ``RESULTS_DIR``: ``grid.yaml``, ``cells/<cell_id>/`` (a fine-tuning run dir plus
  ``cell.json``, ``cell.log`` and, on failure, ``error.json``), ``figures/``, ``tables/``,
  ``report.md``; with ablations also ``derived/`` (rewritten test sets, few-shot halves and
  draws, each with a JSON manifest, and ``derived/index.json``) and ``cache/features/``;
* in each of those folders, while a command writes it: ``.picomaml.lock`` (:mod:`picomaml.locks`).

Only names and the checkpoint-folder rules live here; what goes *into* a checkpoint is
:mod:`picomaml.pretrain.checkpoint`'s business. Writes go through :mod:`picomaml.fileio`.
"""

from __future__ import annotations

import re
from pathlib import Path

from picomaml.errors import PicomamlError
from picomaml.fileio import write_text

# --- any folder a command writes (run dir, results dir, grid cell) ---------------------------
#: The advisory lock of :mod:`picomaml.locks`: it holds the PID of the process writing here.
LOCK = ".picomaml.lock"

# --- Pico HF folder ------------------------------------------------------------------------
PICO_CONFIG = "config.json"
PICO_WEIGHTS = "model.safetensors"
PICO_FILES = (PICO_CONFIG, PICO_WEIGHTS)
# What makes the folder loadable by ``transformers`` (trust_remote_code=True) on its own:
# the modeling file named by config.json's auto_map, the generation defaults and the tokenizer.
PICO_MODELING = "modeling_picomaml.py"
PICO_GENERATION_CONFIG = "generation_config.json"
PICO_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
PICO_HF_FILES = (PICO_MODELING, PICO_GENERATION_CONFIG, *PICO_TOKENIZER_FILES)

# --- pretraining RUN_DIR -------------------------------------------------------------------
PRETRAIN_CONFIG = "config.yaml"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
TRAINER_STATE = "trainer_state.pt"
META_HEAD = "head.safetensors"
PROBE = "probe.json"
INIT_FROM = "init_from.json"
DYNAMICS_DIR = "learning_dynamics"
_STEP_RE = re.compile(r"^step_(\d+)$")

# --- fine-tuning RUN_DIR -------------------------------------------------------------------
RUN_JSON = "run.json"
FINETUNE_YAML = "finetune.yaml"
TRAIN_LOG = "train_log.jsonl"
MODEL_DIR = "model"
CRF_HEAD = f"{MODEL_DIR}/crf_head.safetensors"
BACKBONE_DIR = f"{MODEL_DIR}/backbone"
RESULTS_JSON = "results.json"
PREDICTIONS_DIR = "predictions"
CONFIDENCE_DIR = "confidence"
SAMPLING_JSON = "sampling.json"

# --- study RESULTS_DIR ---------------------------------------------------------------------
GRID_YAML = "grid.yaml"
CELLS_DIR = "cells"
CELL_JSON = "cell.json"
CELL_LOG = "cell.log"
ERROR_JSON = "error.json"
FIGURES_DIR = "figures"
TABLES_DIR = "tables"
REPORT_MD = "report.md"
DERIVED_DIR = "derived"
DERIVED_INDEX = f"{DERIVED_DIR}/index.json"
FEATURE_CACHE_DIR = "cache/features"


def predictions_file(code: str) -> str:
    """``predictions/{code}.iob2``, relative to a fine-tuning run dir."""
    return f"{PREDICTIONS_DIR}/{code}.iob2"


def confidence_file(code: str) -> str:
    """``confidence/{code}.jsonl``, relative to a fine-tuning run dir."""
    return f"{CONFIDENCE_DIR}/{code}.jsonl"


# --- checkpoint folders --------------------------------------------------------------------


def step_name(step: int | str) -> str:
    """``step_N`` (``step_name("{step}")`` is the template ``step_{step}``)."""
    return f"step_{step}"


def parse_step(name: str) -> int | None:
    """N of a ``step_N`` name, else ``None``."""
    m = _STEP_RE.match(name)
    return int(m.group(1)) if m else None


def step_dir(root: str | Path, step: int) -> Path:
    """``root/step_N``."""
    return Path(root) / step_name(step)


def step_dirs(root: str | Path, require: str | None = None) -> list[tuple[int, Path]]:
    """``(N, root/step_N)`` of the step folders under ``root`` by step (holding ``require``
    when given); empty when ``root`` does not exist."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        step = parse_step(child.name)
        if step is None or not child.is_dir():
            continue
        if require is None or (child / require).is_file():
            found.append((step, child))
    return sorted(found)


def read_latest(root: str | Path) -> str | None:
    """The ``step_N`` name held by ``root/latest`` (``None`` when there is no pointer);
    anything else in the pointer is an error naming it."""
    pointer = Path(root) / LATEST
    if not pointer.is_file():
        return None
    name = pointer.read_text(encoding="utf-8").strip()
    if parse_step(name) is None:
        raise PicomamlError(f"{pointer}: expected 'step_N', got {name!r}")
    return name


def write_latest(root: str | Path, folder: Path) -> None:
    """Point ``root/latest`` at ``folder`` (atomically: a reader sees the old or the new one)."""
    write_text(Path(root) / LATEST, folder.name + "\n")


def latest_step_of_run(run_dir: str | Path, checkpoints: str = CHECKPOINTS) -> int | None:
    """Step named by ``RUN_DIR/checkpoints/latest`` (``None`` when no checkpoint exists)."""
    name = read_latest(Path(run_dir) / checkpoints)
    return None if name is None else parse_step(name)


def pretrain_run_dir(backbone: str | Path) -> Path | None:
    """The pretraining run dir behind a backbone path (a run dir or its ``checkpoints/step_N``),
    recognised by its ``config.yaml``; ``None`` for a bare Pico folder."""
    p = Path(backbone)
    if (p / PRETRAIN_CONFIG).is_file():
        return p
    if p.parent.name == CHECKPOINTS and (p.parent.parent / PRETRAIN_CONFIG).is_file():
        return p.parent.parent
    return None

"""``picomaml demo``: the whole study in miniature on a laptop CPU.

Pretrain the grid's backbones from their ``pretrain_config`` presets (identical data,
steps and seed; finished runs are reused, interrupted ones resumed), probe each run's
final checkpoint with a small few-shot probe (:data:`DEMO_PROBE`), run the grid
(fine-tune + zero-shot evaluation + checkpoint sweep), write the report and print its
path. The report itself says loudly that these are demo-size models.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from picomaml import layout
from picomaml.config import from_dict, load_yaml, to_dict
from picomaml.data.paths import resolve_data_path
from picomaml.data.tokenizer import load_tokenizer
from picomaml.errors import PicomamlError
from picomaml.fileio import read_json
from picomaml.layout import latest_step_of_run
from picomaml.pretrain.config import PretrainConfig, load_pretrain_config
from picomaml.pretrain.probe import (
    DEFAULT_CORPUS,
    ProbeSettings,
    ProbeTarget,
    default_probe_path,
    run_probe,
)
from picomaml.pretrain.trainer import run_pretraining
from picomaml.study.config import GridConfig, load_grid
from picomaml.study.grid import run_grid
from picomaml.study.report import write_report

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_CONFIG = "configs/study/demo.yaml"
#: The demo's probe: the demo presets' episode shape and 40 episodes, about a minute per
#: backbone on 2 CPU cores (the paper-scale default is 32-way, 200 episodes).
DEMO_PROBE = ProbeSettings(ways=8, shots=4, queries=4, episodes=40, window=64)


def resolve_repo_path(path: str | Path) -> Path:
    """A config path as given (relative to the current dir), else relative to the checkout."""
    p = Path(path)
    if p.exists() or p.is_absolute():
        return p
    alt = REPO_ROOT / p
    return alt if alt.exists() else p


def _same_config(saved: Path, wanted: PretrainConfig) -> bool:
    try:
        old = from_dict(PretrainConfig, load_yaml(saved))
    except PicomamlError:
        return False
    a, b = to_dict(old), to_dict(wanted)
    # Paths are recorded resolved; the settings that define the experiment must match.
    for section in ("model", "training", "meta"):
        if a.get(section) != b.get(section):
            return False
    return a["data"]["seq_len"] == b["data"]["seq_len"]


def ensure_backbones(
    grid: GridConfig, results_dir: Path, data_root: Path, say: Callable[[str], None]
) -> None:
    """Pretrain every backbone of ``grid`` that is not finished yet (resume if started);
    published ``hf:`` backbones need none (the grid fetches them)."""
    for b in grid.backbones:
        if b.is_hub:
            continue
        run_dir = b.resolved_path(results_dir)
        if b.pretrain_config is None:
            if not run_dir.exists():
                raise PicomamlError(f"backbone {run_dir} does not exist and has no pretrain_config")
            continue
        cfg = load_pretrain_config(resolve_repo_path(b.pretrain_config), b.pretrain_overrides)
        done = latest_step_of_run(run_dir)
        saved = run_dir / layout.PRETRAIN_CONFIG
        if done is not None and saved.is_file():
            if not _same_config(saved, cfg):
                raise PicomamlError(
                    f"{run_dir} was pretrained with another config than {b.pretrain_config}; "
                    "delete it or pass another --out"
                )
            if done >= cfg.training.max_steps:
                say(f"reusing finished pretraining run {run_dir} (step {done})")
                continue
        t0 = time.perf_counter()
        say(f"pretraining {b.variant}-{b.size} -> {run_dir} ({cfg.training.max_steps} steps)")
        run_pretraining(cfg, run_dir, resume=done is not None, data_root=data_root)
        say(f"pretrained {b.variant}-{b.size} in {time.perf_counter() - t0:.0f}s")


def probe_backbones(
    grid: GridConfig, results_dir: Path, data_root: Path, say: Callable[[str], None]
) -> None:
    """Probe the final checkpoint of every pretraining run of ``grid`` (kept when done)."""
    tokenizer = None
    for b in grid.backbones:
        run_dir = b.resolved_path(results_dir)
        latest = latest_step_of_run(run_dir)
        out = default_probe_path(run_dir)
        if latest is None:
            continue
        folder = layout.step_dir(run_dir / layout.CHECKPOINTS, latest)
        if out.is_file() and any(
            c.get("backbone") == str(folder) for c in read_json(out).get("checkpoints", [])
        ):
            say(f"reusing probe of {folder}")
            continue
        tokenizer = tokenizer or load_tokenizer(data_root)
        run_probe(
            [ProbeTarget.local(folder)],
            settings=DEMO_PROBE,
            corpus=resolve_data_path(DEFAULT_CORPUS, data_root),
            corpus_name=DEFAULT_CORPUS,
            tokenizer=tokenizer,
            variant=b.variant,
            out=out,
            say=say,
        )


def headline(results_dir: Path) -> list[str]:
    """The scale table's rows as short lines for the terminal."""
    path = results_dir / layout.TABLES_DIR / "scale.json"
    if not path.is_file():
        return []
    payload = read_json(path)
    if payload.get("unavailable"):
        return [f"zero-shot comparison not available: {payload['unavailable']}"]
    lines = []
    for row in payload["tables"][0]["rows"]:
        lines.append(
            f"{row['size']}: zero-shot F1 vanilla {row['vanilla F1']:.1f}% vs MAML "
            f"{row['MAML F1']:.1f}% ({row['delta (pp)']:+.1f} pp over {row['pairs']} pairs)"
        )
    return lines


def run_demo(
    out: str | Path = "results/demo",
    *,
    data_root: Path,
    config: str | Path = DEFAULT_CONFIG,
    workers: int = 1,
) -> Path:
    """Pretrain, run the grid, write the report; returns the report path.

    ``data_root``: the resolved data root, with every file a full run reads (``picomaml
    demo`` fetches what is missing first: :func:`picomaml.data.download.ensure_data`).
    """

    def say(msg: str) -> None:
        print(f"demo: {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    results_dir = Path(out)
    grid = load_grid(resolve_repo_path(config))
    ensure_backbones(grid, results_dir, data_root, say)
    probe_backbones(grid, results_dir, data_root, say)
    t1 = time.perf_counter()
    summary = run_grid(grid, results_dir, workers=workers, data_root=data_root)
    say(summary.line())
    t2 = time.perf_counter()
    report = write_report(results_dir, data_root=data_root)
    t3 = time.perf_counter()
    say(f"time: pretraining + probe {t1 - t0:.0f}s, grid {t2 - t1:.0f}s, report {t3 - t2:.0f}s")
    for line in headline(results_dir):
        say(line)
    if summary.failed:
        say(
            f"{len(summary.failed)} cell(s) failed; their error.json files are listed in the report"
        )
    return report

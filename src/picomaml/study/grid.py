"""Expand a study grid into cells and run them: resumable, shardable, parallel.

A cell is one fine-tuning run (backbone x regime x source x seed, optionally from
one pretraining checkpoint) followed by evaluation. Each cell owns
``RESULTS_DIR/cells/<cell_id>/``; ``results.json`` there means "done", so a rerun
(or a requeued SLURM array task) skips it. A failing cell writes ``error.json``
and the grid carries on: one bad run must not cost the other 159.

A cell is run under its folder's lock (:mod:`picomaml.locks`), taken by the process that
runs it (a worker, a shard): a cell another grid is running is left alone and reported,
never cleared, so two grids on one results dir share the work instead of deleting each
other's cells. SIGTERM (:mod:`picomaml.process`) stops the workers too: a running cell
ends cleanly unfinished (its partial output removed, ``error.json`` saying it was
terminated) and a rerun runs it again.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import re
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from picomaml import layout
from picomaml.config import from_dict, load_yaml, save_config, to_dict
from picomaml.data.paths import no_data_root_error
from picomaml.errors import PicomamlError
from picomaml.fileio import append_text, write_json
from picomaml.layout import CELL_JSON, CELL_LOG, ERROR_JSON, GRID_YAML, LOCK, RESULTS_JSON
from picomaml.locks import FolderBusy, folder_lock
from picomaml.model.backbone import local_checkpoints, resolve_backbone
from picomaml.model.hub import is_hub_ref
from picomaml.ner.evaluate import evaluate_run
from picomaml.ner.finetune import finetune
from picomaml.process import Terminated, setup_worker, terminating
from picomaml.study.ablations import ablation_cells, cell_plan
from picomaml.study.cell import Cell
from picomaml.study.config import BackboneSpec, GridConfig, build_finetune_config
from picomaml.study.derived import prepare_derived

CellRunner = Callable[[Cell, Path, GridConfig, "Path | None"], None]


def sweep_steps(spec: BackboneSpec, steps: list[int] | str, results_dir: Path) -> list[int]:
    """The steps a sweep over ``spec`` covers: the listed ones; for ``all``, the keys of a
    ``checkpoints:`` mapping or the complete checkpoints in the local run dir. Never the
    network (a template with ``steps: all`` is refused when the grid is loaded)."""
    if steps != "all":
        return list(steps)
    template = spec.checkpoint_template()
    if isinstance(template, dict):
        return sorted(template)
    return [step for step, _ in local_checkpoints(spec.resolved_path(results_dir))]


def expand_cells(cfg: GridConfig, results_dir: Path) -> list[Cell]:
    """All cells of the grid in a fixed order (main grid first, then sweeps).

    The order depends only on the config (and, for ``steps: all`` over a local run dir,
    on the checkpoints on disk; never on the network), so every shard of a SLURM array
    computes the same list.
    """
    cells: list[Cell] = []
    for b in cfg.backbones:
        path = b.reference(results_dir)
        for regime in cfg.regimes:
            for source in cfg.sources:
                for seed in cfg.seeds:
                    cells.append(Cell("main", b.variant, b.size, regime, source, seed, path))
    for sweep in cfg.sweeps:
        for variant in sweep.variants:
            for size in sweep.sizes:
                spec = cfg.backbone(variant, size)
                steps = sweep_steps(spec, sweep.steps, results_dir)
                for regime in sweep.regimes:
                    for source in sweep.sources:
                        for seed in sweep.seeds:
                            for step in steps:
                                cells.append(
                                    Cell(
                                        "sweep",
                                        variant,
                                        size,
                                        regime,
                                        source,
                                        seed,
                                        spec.checkpoint(step, results_dir),
                                        step,
                                    )
                                )

    cells += ablation_cells(cfg, results_dir)
    ids = [c.cell_id for c in cells]
    if len(set(ids)) != len(ids):
        raise PicomamlError("grid expands to duplicate cells; check sweeps for repeated entries")
    return cells


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``i/n`` (0 <= i < n), as in ``--shard $SLURM_ARRAY_TASK_ID/$N``."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise PicomamlError(f"--shard {text!r}: expected i/n, e.g. 0/16")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise PicomamlError(f"--shard {text!r}: need 0 <= i < n and n >= 1")
    return i, n


def shard_cells(cells: list[Cell], index: int, count: int) -> list[Cell]:
    """Round-robin share ``index`` of ``count``: disjoint, covering, and size-balanced
    (consecutive cells differ in source, so each shard gets a mix of sizes)."""
    return cells[index::count]


def is_done(cell_dir: Path) -> bool:
    """A cell is finished when its results file exists."""
    return (cell_dir / RESULTS_JSON).is_file()


def write_error(cell_dir: Path, cell: Cell, exc: BaseException, message: str | None = None) -> None:
    """Record a failure as ``error.json`` (message + traceback)."""
    cell_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "cell_id": cell.cell_id,
        "cell": asdict(cell),
        "error_type": type(exc).__name__,
        "message": str(exc) if message is None else message,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_json(cell_dir / ERROR_JSON, payload, end="")


def clear_cell(cell_dir: Path, keep: tuple[str, ...] = ()) -> None:
    """Remove everything in ``cell_dir`` but its lock file and ``keep``."""
    for child in cell_dir.iterdir():
        if child.name == LOCK or child.name in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def execute_cell(
    runner: CellRunner, cell: Cell, cell_dir: Path, cfg: GridConfig, data_root: Path | None
) -> tuple[str, str, float]:
    """Run one cell in this process under its lock; returns (cell_id, status, seconds) with
    status "ok", "failed", "done" (finished meanwhile by another grid) or "busy: <holder>".

    Exceptions never escape: they become ``error.json`` so the grid continues.
    A leftover partial run from an interrupted attempt is cleared first, because
    half-written fine-tuning output must never be mistaken for a result. SIGTERM
    (:class:`Terminated`) clears the partial run, records it and stops.
    """
    start = time.perf_counter()
    if terminating():  # a worker asked to stop starts nothing new
        raise Terminated()
    try:
        with folder_lock(cell_dir, "grid cell"):
            if is_done(cell_dir):
                return cell.cell_id, "done", 0.0
            clear_cell(cell_dir)
            meta = asdict(cell) | {"cell_id": cell.cell_id}
            write_json(cell_dir / CELL_JSON, meta, indent=None, end="")
            try:
                runner(cell, cell_dir, cfg, data_root)
                if not is_done(cell_dir):
                    raise PicomamlError(
                        f"cell runner finished without writing {cell_dir / RESULTS_JSON}"
                    )
            except Terminated as exc:
                clear_cell(cell_dir, keep=(CELL_JSON, CELL_LOG))
                write_error(cell_dir, cell, exc, "terminated by SIGTERM; a rerun runs it again")
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is recorded, the grid goes on
                write_error(cell_dir, cell, exc)
                return cell.cell_id, "failed", time.perf_counter() - start
    except FolderBusy as exc:
        return cell.cell_id, f"busy: {exc}", 0.0
    return cell.cell_id, "ok", time.perf_counter() - start


def _worker_init(threads: int, parent: int) -> None:
    """Split the CPU cores between worker processes instead of oversubscribing them, and
    tie the worker to its parent: SIGTERM stops it cleanly, and it gets one when the
    parent dies (however it dies)."""
    setup_worker(parent)
    torch.set_num_threads(threads)


def _stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """SIGTERM every worker of ``pool`` and wait until each has cleaned up its cell."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class GridSummary:
    """What a grid invocation did, for the CLI and tests."""

    total: int
    skipped: list[str]
    ok: list[str]
    failed: list[str]
    results_dir: Path
    #: Cells another process was running (left alone; a rerun picks up what it did not finish).
    busy: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One-line human summary."""
        busy = f", {len(self.busy)} run by another process" if self.busy else ""
        return (
            f"{self.total} cells in this shard: {len(self.ok)} ran, {len(self.skipped)} "
            f"already done, {len(self.failed)} failed{busy}"
        )


def write_grid_copy(cfg: GridConfig, results_dir: Path) -> None:
    """Save ``grid.yaml``; refuse to mix results of a different grid in one directory."""
    results_dir.mkdir(parents=True, exist_ok=True)
    target = results_dir / GRID_YAML
    if target.is_file():
        try:
            existing = from_dict(GridConfig, load_yaml(target))
        except PicomamlError as exc:
            raise PicomamlError(f"{target}: unreadable grid copy ({exc})") from exc
        if to_dict(existing) != to_dict(cfg):
            raise PicomamlError(
                f"{target} records a different grid than the one given; use another "
                f"--results directory (or delete {target} if the change is intended)"
            )
        return
    save_config(cfg, target)


def missing_backbones(cells: list[Cell], cfg: GridConfig) -> list[str]:
    """Backbone paths of ``cells`` that do not exist, with how to create them."""
    out = []
    seen = set()
    for cell in cells:
        if cell.backbone in seen or is_hub_ref(cell.backbone) or Path(cell.backbone).exists():
            continue
        seen.add(cell.backbone)
        spec = cfg.backbone(cell.variant, cell.size)
        how = ""
        if spec.pretrain_config:
            extra = " ".join(spec.pretrain_overrides)
            how = f" (create it with: picomaml pretrain --config {spec.pretrain_config} {extra})"
        out.append(f"{cell.backbone}{how}".rstrip())
    return out


def fetch_hub_backbones(cells: list[Cell], say: Callable[[str], None]) -> None:
    """Download every ``hf:`` backbone of ``cells`` once, before any cell starts: a wrong
    repository, step or file then stops the grid with one line instead of failing every
    cell, and parallel workers find the weights in the cache."""
    refs = list(dict.fromkeys(c.backbone for c in cells if is_hub_ref(c.backbone)))
    if not refs:
        return
    say(f"checking {len(refs)} Hub checkpoint(s) (config.json + weights into the HF cache)")
    for ref in refs:
        resolve_backbone(ref)


def run_grid(
    cfg: GridConfig,
    results_dir: Path,
    *,
    shard: tuple[int, int] = (0, 1),
    workers: int = 1,
    runner: CellRunner | None = None,
    data_root: Path | None = None,
    progress: bool = True,
) -> GridSummary:
    """Run this shard's unfinished cells; finished ones are skipped, failures recorded.

    ``data_root``: the resolved data root, handed to every cell; ``None``: none was found,
    so a cell that reads data fails with the missing-data line (finished cells are still
    skipped and the grid still goes on).
    """
    if workers < 1:
        raise PicomamlError(f"--workers must be >= 1, got {workers}")
    results_dir = Path(results_dir)
    runner = runner or finetune_and_evaluate
    write_grid_copy(cfg, results_dir)
    cells = shard_cells(expand_cells(cfg, results_dir), *shard)
    prepare_derived(cfg, results_dir, data_root, _say if progress else None)
    cells_dir = results_dir / layout.CELLS_DIR
    todo = [c for c in cells if not is_done(cells_dir / c.cell_id)]
    skipped = [c.cell_id for c in cells if is_done(cells_dir / c.cell_id)]
    missing = missing_backbones(todo, cfg)
    if missing:
        raise PicomamlError("backbone(s) not found:\n  " + "\n  ".join(missing))
    fetch_hub_backbones(todo, _say if progress else lambda _msg: None)
    summary = GridSummary(len(cells), skipped, [], [], results_dir)
    bar = _progress(len(todo), progress)
    if progress and skipped:
        bar.write(f"skipping {len(skipped)} finished cell(s)")

    def record(cell_id: str, status: str, seconds: float) -> None:
        if status == "done":
            summary.skipped.append(cell_id)
        elif status.startswith("busy"):
            summary.busy.append(cell_id)
            bar.write(f"SKIPPED {cell_id}: {status.removeprefix('busy: ')}")
        else:
            (summary.ok if status == "ok" else summary.failed).append(cell_id)
        if status == "failed":
            bar.write(f"FAILED {cell_id}: see {cells_dir / cell_id / ERROR_JSON}")
        bar.set_postfix(ok=len(summary.ok), failed=len(summary.failed), last=f"{seconds:.0f}s")
        bar.update(1)

    if workers == 1 or len(todo) <= 1:
        for cell in todo:
            bar.set_description(cell.cell_id)
            record(*execute_cell(runner, cell, cells_dir / cell.cell_id, cfg, data_root))
    else:
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_worker_init, initargs=(threads, os.getpid())
        ) as pool:
            try:
                futures = {
                    pool.submit(execute_cell, runner, c, cells_dir / c.cell_id, cfg, data_root): c
                    for c in todo
                }
                for fut in cf.as_completed(futures):
                    cell = futures[fut]
                    try:
                        record(*fut.result())
                    except (Exception, Terminated) as exc:  # noqa: BLE001 - a worker died
                        if terminating():  # (killed for memory, or SIGTERM sent to it alone)
                            raise
                        if not isinstance(exc, Terminated):
                            write_error(cells_dir / cell.cell_id, cell, exc)
                        record(cell.cell_id, "failed", 0.0)
            except Terminated:
                _stop_workers(pool)
                raise
    bar.close()
    return summary


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _NullBar:
    def write(self, text: str) -> None:
        pass

    def set_postfix(self, **kw: Any) -> None:
        pass

    def set_description(self, text: str) -> None:
        pass

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NullBar()
    return tqdm(total=total, unit="cell", file=sys.stderr, dynamic_ncols=True)


# --- the real cell: fine-tune, then evaluate -------------------------------------------


def finetune_and_evaluate(
    cell: Cell, cell_dir: Path, cfg: GridConfig, data_root: Path | None
) -> None:
    """The default cell runner: ``picomaml finetune`` then ``picomaml evaluate``."""

    plan = cell_plan(cell, cfg, cell_dir.parent.parent)
    ft_cfg = build_finetune_config(
        {**cfg.finetune, **plan.finetune},
        backbone=cell.backbone,
        source=cell.source,
        regime=cell.regime,
        seed=cell.seed,
    )
    if data_root is None:
        raise no_data_root_error()

    def log(msg: str) -> None:
        append_text(cell_dir / layout.CELL_LOG, msg + "\n")

    finetune(ft_cfg, cell_dir, data_root=data_root, log=log)
    # "source" = the source's own test set; for "all", evaluate scores each of the
    # nine sources' test sets under its own code.
    datasets = [cell.source if d == "source" else d for d in cfg.evaluate.datasets]
    if plan.datasets is not None:
        datasets = plan.datasets
    evaluate_run(
        cell_dir,
        data_root=data_root,
        datasets=list(dict.fromkeys(datasets)),
        log=log,
        derived=plan.derived,
    )

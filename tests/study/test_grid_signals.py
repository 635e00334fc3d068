"""Grids that share a results dir, and SIGTERM of ``grid --workers 2`` (issue 22).

Each cell runs under its folder's lock: a cell another grid is running is left alone (never
cleared) and one it finished meanwhile is not run again. SIGTERM stops the workers with the
parent, leaves each cell finished or cleanly unfinished, ends with 143 and one line, and a
rerun resumes. The SIGTERM test runs the real ``picomaml grid`` process with a slow cell
runner that the spawned workers import.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml

import picomaml
from picomaml.study.cell import Cell
from picomaml.study.config import GridConfig
from picomaml.study.grid import run_grid
from tests.fixtures.holder import held_elsewhere
from tests.study.test_grid import _grid, fake_runner
from tests.test_process import alive

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(picomaml.__file__).resolve().parents[1]  # the picomaml these tests import


def test_a_cell_held_by_another_grid_is_left_alone(tmp_path: Path) -> None:
    cfg = _grid(tmp_path, sources=["sk_snk"])
    results = tmp_path / "res"
    busy = results / "cells" / "maml-tiny-head-sk_snk-s0"
    with held_elsewhere(busy, "grid cell") as other:
        (busy / "model.partial").write_text("the other grid's work in progress")
        summary = run_grid(cfg, results, runner=fake_runner, progress=False)
        assert summary.busy == [busy.name] and len(summary.ok) == 3 and not summary.failed
        assert (busy / "model.partial").is_file() and not (busy / "results.json").exists()
        assert summary.line().endswith("0 failed, 1 run by another process")
        assert str(other.pid) in (busy / ".picomaml.lock").read_text()


def test_a_cell_finished_by_another_grid_meanwhile_is_not_run_again(tmp_path: Path) -> None:
    cfg = _grid(tmp_path, sources=["sk_snk"], regimes=["head"])
    results = tmp_path / "res"
    ran = []

    def runner(cell: Cell, cell_dir: Path, grid: GridConfig, data_root: Path | None) -> None:
        ran.append(cell.cell_id)
        fake_runner(cell, cell_dir, grid, data_root)
        other = cell_dir.parent / "maml-tiny-head-sk_snk-s0"  # the other grid's cell
        if other != cell_dir:
            other.mkdir(parents=True, exist_ok=True)
            (other / "results.json").write_text('{"run": {}, "datasets": {"x": 1}}')

    summary = run_grid(cfg, results, runner=runner, progress=False)
    assert ran == ["vanilla-tiny-head-sk_snk-s0"]
    assert summary.skipped == ["maml-tiny-head-sk_snk-s0"] and len(summary.ok) == 1
    other = json.loads((results / "cells/maml-tiny-head-sk_snk-s0/results.json").read_text())
    assert other["datasets"] == {"x": 1}


SLOW_CELL = """
import json, os, time
from pathlib import Path

def runner(cell, cell_dir, cfg, data_root):
    (cell_dir / "model.partial").write_text("half a model")
    started = cell_dir.parent.parent / "started"
    started.mkdir(exist_ok=True)
    (started / f"{os.getpid()}").write_text(cell.cell_id)
    time.sleep(120)
"""

DRIVER = """
import sys
sys.path.insert(0, sys.argv[1])
import slowcell
from picomaml.study import grid
grid.finetune_and_evaluate = slowcell.runner
from picomaml.cli.main import console_main
sys.argv = ["picomaml", *sys.argv[2:]]
console_main()
"""


def test_sigterm_stops_grid_workers_cleanly_and_a_rerun_resumes(tmp_path: Path) -> None:
    (tmp_path / "slowcell.py").write_text(textwrap.dedent(SLOW_CELL))
    cfg = _grid(tmp_path, sources=["sk_snk"])  # 4 cells
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(json.loads(json.dumps(cfg, default=vars))))
    results = tmp_path / "res"
    args = ["grid", str(config), "--results", str(results), "--workers", "2"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(ROOT)]))
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(tmp_path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    started = results / "started"
    deadline = time.monotonic() + 120
    while len(list(started.glob("*")) if started.is_dir() else []) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    workers = {int(p.name): p.read_text() for p in started.iterdir()}
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and err.splitlines()[-1] == "picomaml: terminated (SIGTERM)"
    for pid in workers:
        for _ in range(100):
            if not alive(pid):
                break
            time.sleep(0.05)
        assert not alive(pid), f"worker {pid} outlived the grid"
    for cell_id in workers.values():
        cell = results / "cells" / cell_id
        names = sorted(p.name for p in cell.iterdir())
        assert names == ["cell.json", "error.json"], names  # cleanly unfinished
        error = json.loads((cell / "error.json").read_text())
        assert error["message"] == "terminated by SIGTERM; a rerun runs it again"
    assert not list(results.rglob("results.json")) and not list(results.rglob(".picomaml.lock"))
    summary = run_grid(cfg, results, runner=fake_runner, progress=False)
    assert len(summary.ok) == 4 and not summary.skipped and not summary.failed

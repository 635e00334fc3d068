"""scripts/device-check.sh: syntax, options, and the CPU dry run of every step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "device-check.sh"


def _run(*args: str, out: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    if out is not None:
        env["OUT"] = str(out)
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )  # fmt: skip


def test_syntax_and_options() -> None:
    assert subprocess.run(["bash", "-n", str(SCRIPT)], check=False).returncode == 0
    usage = _run("--help")
    assert usage.returncode == 0 and "--dry-run" in usage.stdout
    bad = _run("--fast")
    assert bad.returncode == 2 and "unknown option --fast" in bad.stderr


@pytest.mark.slow
def test_dry_run_writes_one_json_with_every_step(tmp_path: Path) -> None:
    """About 40 s on 2 free cores (longer on a busy machine): hence slow."""
    out = tmp_path / "out"
    proc = _run("--dry-run", "--presets", "demo-maml no-such-preset", out=out, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["device-check.json", "device-check.log"]
    report = json.loads((out / "device-check.json").read_text())
    assert report["dry_run"] is True
    steps = {s["name"]: s for s in report["steps"]}
    for name in ("env", "bench-tiny-eager", "bench-tiny-compiled", "pretrain-demo-maml"):
        assert steps[name]["status"] == "ok", steps[name]
    assert steps["bench-tiny-eager"]["result"]["config"]["compile_modes"] == ["eager"]
    compiled = steps["bench-tiny-compiled"]["result"]
    assert compiled["config"]["compile_modes"] == ["compiled"]
    assert compiled["ar"]["tokens_per_s"] > 0 and compiled["maml"]["tokens_per_s"] > 0
    assert steps["pretrain-demo-maml"]["result"]["metrics_records"] > 0
    assert steps["pretrain-no-such-preset"]["status"] == "skipped"
    assert "no configs/pretrain/no-such-preset.yaml" in steps["pretrain-no-such-preset"]["note"]
    assert steps["probe-no-such-preset"]["status"] == "skipped"
    assert steps["probe-demo-maml"]["status"] in ("ok", "skipped")

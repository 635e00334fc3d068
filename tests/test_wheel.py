"""The installable package: build the wheel, install it into a fresh virtual environment and
run the CLI and the tokenizer outside the source tree, with no data root and no network.

The fresh environment gets the wheel with ``--no-deps`` and sees this environment's
dependencies through a ``.pth`` file pointing at a folder of links to them (everything but
picomaml itself), which works offline. The build runs ``--no-isolation`` for the same reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from picomaml.cli.main import main

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """``python -m build --wheel`` on a copy of the sources (the checkout stays untouched)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("*.egg-info", "__pycache__")
    shutil.copytree(ROOT / "src", src / "src", ignore=ignore)
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)], src)
    (path,) = out.glob("picomaml-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory) -> Path:
    """A fresh venv with the wheel installed and this environment's dependencies visible."""
    base = tmp_path_factory.mktemp("venv")
    env_dir = base / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], base)
    python = env_dir / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base
        ).strip()
    )
    deps = base / "deps"
    deps.mkdir()
    for lib in dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]):
        for entry in Path(lib).iterdir():
            if "picomaml" in entry.name.lower() or entry.name in ("__pycache__",):
                continue
            if not (deps / entry.name).exists():
                (deps / entry.name).symlink_to(entry)
    (site / "_test_deps.pth").write_text(f"{deps}\n", "utf-8")
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    _run([*pip, "install", "--no-deps", "--no-index", "-q", str(wheel)], base)
    check = subprocess.run([*pip, "check"], cwd=base, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return env_dir


def test_wheel_carries_the_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = ("olmo-7b-0724.json.gz", "README.md", "LICENSE-Apache-2.0.txt")
    pools = ("names-frequent-english-mini.tsv", "names-unseen-filipino.tsv")
    for data in (*shipped, *pools):
        assert f"picomaml/data/assets/{data}" in names
    assert "picomaml/py.typed" in names and "picomaml/cli/main.py" in names
    assert not any(n.startswith(("tests/", "configs/")) for n in names)


def test_cli_and_tokenizer_outside_the_source_tree(venv: Path, tmp_path: Path, capsys) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PICOMAML_", "PYTHON"))}
    env["PYTHONNOUSERSITE"] = "1"
    bin_dir = venv / "bin"
    assert "model" in _run([str(bin_dir / "picomaml"), "--help"], tmp_path, env)
    args = ["model", "info", "--size", "tiny", "--json"]
    info = json.loads(_run([str(bin_dir / "picomaml"), *args], tmp_path, env))
    assert main(args) == 0  # the same answer as the source tree's
    assert info == json.loads(capsys.readouterr().out) and info["tiny"]["parameters"]["total"] > 0
    code = (
        "import picomaml, json; from picomaml.data.tokenizer import load_tokenizer; "
        "t = load_tokenizer(); s = 'Pumunta si Maria sa Cebu.'; ids = t.encode(s).ids; "
        "print(json.dumps([picomaml.__file__, ids, t.decode(ids) == s]))"
    )
    where, ids, same = json.loads(_run([str(bin_dir / "python"), "-c", code], tmp_path, env))
    assert Path(where).is_relative_to(venv) and not Path(where).is_relative_to(ROOT)
    assert same and len(ids) > 5

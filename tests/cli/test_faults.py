"""Fault paths give one clear line and exit 2, never a traceback (issue 10).

Covered here: a backbone ``config.json`` with impossible values (defect 4) and a corrupt
``crf_head.safetensors`` (defect 3). Two cases run the real ``picomaml`` process, so the exit
code and stderr are exactly what a user sees; the rest call the CLI in-process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from picomaml.cli.main import main as cli_main
from picomaml.model import PicoConfig, PicoDecoder, save_pico

HEAD = Path("model") / "crf_head.safetensors"


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "picomaml.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _one_line_error(stderr: str) -> str:
    """The single ``picomaml: error: ...`` line, asserting that nothing else was printed."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("picomaml: error: "), stderr
    return lines[0]


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("faults") / "backbone"
    save_pico(PicoDecoder(PicoConfig(d_model=48, n_layers=2, n_heads=4, n_kv_heads=2)), folder)
    return folder


def _bad_backbone(backbone: Path, dest: Path, **changes: object) -> Path:
    shutil.copytree(backbone, dest)
    cfg = json.loads((dest / "config.json").read_text())
    cfg.update(changes)
    (dest / "config.json").write_text(json.dumps(cfg))
    return dest


def test_zero_heads_in_config_json_is_one_line_from_the_real_cli(
    backbone: Path, fixture_data_root: Path, tmp_path: Path
) -> None:
    bad = _bad_backbone(backbone, tmp_path / "bad", attention_n_heads=0)
    out = tmp_path / "ft"
    args = ["finetune", "--backbone", str(bad), "--source", "sk_snk", "--out", str(out)]
    proc = _run_cli("--data-dir", str(fixture_data_root), *args)
    assert proc.returncode == 2
    line = _one_line_error(proc.stderr)
    assert line == (
        f"picomaml: error: {bad / 'config.json'}: attention_n_heads must be a positive "
        "integer, got 0"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"d_model": -96}, "d_model must be a positive integer, got -96"),
        ({"attention_n_heads": 0}, "attention_n_heads must be a positive integer, got 0"),
        ({"attention_n_heads": 5}, "d_model=48 is not divisible by attention_n_heads=5"),
        ({"attention_n_kv_heads": 3}, "attention_n_heads=4 is not divisible by attention_n_kv_"),
        ({"norm_eps": 0.0}, "norm_eps must be a positive finite number, got 0.0"),
    ],
)
def test_bad_backbone_config_through_finetune_cli(
    backbone: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    changes: dict,
    message: str,
) -> None:
    bad = _bad_backbone(backbone, tmp_path / "bad", **changes)
    out = tmp_path / "ft"
    args = ["finetune", "--backbone", str(bad), "--source", "sk_snk", "--out", str(out)]
    assert cli_main(["--data-dir", str(fixture_data_root), *args]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert str(bad / "config.json") in line and message in line
    assert not out.exists()


def _corrupt_copy(run: Path, dest: Path, content: bytes) -> Path:
    shutil.copytree(run, dest)
    (dest / HEAD).write_bytes(content)
    return dest


def test_corrupt_head_in_tag_is_one_line_from_the_real_cli(
    tiny_ner_run: Path, fixture_data_root: Path, tmp_path: Path
) -> None:
    good = (tiny_ner_run / HEAD).read_bytes()
    run = _corrupt_copy(tiny_ner_run, tmp_path / "run", good[: len(good) // 2])
    text = "Pumunta si Maria sa Cebu."
    proc = _run_cli("--data-dir", str(fixture_data_root), "tag", str(run), text)
    assert proc.returncode == 2 and proc.stdout == ""
    line = _one_line_error(proc.stderr)
    assert line.startswith(f"picomaml: error: {run / HEAD}: cannot read safetensors file (")


def _not_a_head(path: Path) -> bytes:
    """A valid safetensors file that holds other tensors than a CRF head."""
    save_file({"weight": torch.zeros(3, 3)}, str(path))
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["truncated", "empty", "garbage", "other tensors"])
@pytest.mark.parametrize("command", ["evaluate", "tag"])
def test_corrupt_head_is_one_line_in_evaluate_and_tag(
    tiny_ner_run: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    command: str,
) -> None:
    good = (tiny_ner_run / HEAD).read_bytes()
    content = {
        "truncated": good[:100],
        "empty": b"",
        "garbage": b"\x00\xffnot a safetensors file" * 4,
        "other tensors": _not_a_head(tmp_path / "other.safetensors"),
    }[kind]
    run = _corrupt_copy(tiny_ner_run, tmp_path / "run", content)
    if command == "evaluate":
        args = ["evaluate", str(run), "--datasets", "tl_trg", "--n-resamples", "10"]
    else:
        args = ["tag", str(run), "Salamat po"]
    assert cli_main(["--data-dir", str(fixture_data_root), *args]) == 2
    captured = capsys.readouterr()
    line = _one_line_error(captured.err)
    assert str(run / HEAD) in line
    expected = "does not fit a CRF head" if kind == "other tensors" else "cannot read safetensors"
    assert expected in line
    assert captured.out == ""
    assert not (run / "results.json").exists() and not (run / "predictions").exists()

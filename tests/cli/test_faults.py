"""Fault paths of issue 10, one section per defect: every one ends in the exit code and the
single ``picomaml: error: ...`` line a user sees (never a traceback), and leaves no partial
file that a later command would read as valid; after a fault the next run (or ``--resume``)
works.

1. full disk / read-only file system: one line naming the path and cause, exit 1, no partial
   file (finetune, evaluate, pretrain checkpoints and metrics, report), then a clean rerun;
2. ``tag`` and Unicode: ``tests/ner/test_tag_text_unicode.py``;
3. a corrupt ``crf_head.safetensors``; 4. impossible backbone ``config.json`` values;
5 to 11 (arguments checked before work, data-change lines, overrides, progress bars,
permissions, small ones, a self-describing ``results.json``): ``tests/cli/test_arguments.py``.

Most cases call the CLI in-process (``main([...])``, exit code and captured stderr); a few run
the real ``picomaml`` process where the process itself is the point. Faults are simulated by
``tests/cli/diskfull.py``.
"""

from __future__ import annotations

import errno
import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import save_file

from picomaml.cli.main import main as cli_main
from picomaml.fileio import read_json, read_jsonl
from tests.cli.diskfull import file_size_limit, full_disk, leftovers
from tests.cli.run_cli import copy_run, one_line_error, run_cli

HEAD = Path("model") / "crf_head.safetensors"


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "picomaml.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _error_line(stderr: str) -> str:
    """The ``picomaml: error: ...`` line that ends a command which printed progress first:
    the only error line, the last line, and no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("picomaml: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    return errors[0]


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
    line = one_line_error(proc.stderr)
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
    line = one_line_error(capsys.readouterr().err)
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
    line = one_line_error(proc.stderr)
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
    line = one_line_error(captured.err)
    assert str(run / HEAD) in line
    expected = "does not fit a CRF head" if kind == "other tensors" else "cannot read safetensors"
    assert expected in line
    assert captured.out == ""
    assert not (run / "results.json").exists() and not (run / "predictions").exists()


def _finetune_args(data: Path, backbone: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--data-dir",
        str(data),
        "finetune",
        "--backbone",
        str(backbone),
        "--source",
        "sk_snk",
        "--out",
        str(out),
        "epochs=1",
        "device=cpu",
        *extra,
    ]


# --- 1. full disk, read-only file system ---------------------------------------------------


@pytest.mark.parametrize(
    "target,fault",
    [
        ("train_log.jsonl", "ENOSPC"),  # a stream written during training
        ("run.json", "ENOSPC"),
        ("crf_head.safetensors", "EFBIG"),  # written by safetensors' Rust code
    ],
)
def test_finetune_disk_full_is_one_line_then_a_rerun_works(
    backbone: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    fault: str,
) -> None:
    out = tmp_path / "ft"
    args = _finetune_args(fixture_data_root, backbone, out, "log_every=1")
    if fault == "ENOSPC":
        with full_disk(monkeypatch, target, room=40) as disk:
            code, stdout, err = run_cli(capsys, *args)
        assert disk.failures, "the fault was never reached"
        cause = "No space left on device (ENOSPC)"
    else:
        with file_size_limit(1000):  # finetune.yaml and the log fit, the head does not
            code, stdout, err = run_cli(capsys, *args)
        cause = "File too large (EFBIG)"
    assert code == 1 and stdout == ""
    path = out / (HEAD if target == "crf_head.safetensors" else target)
    assert _error_line(err) == f"picomaml: error: {path}: {cause}"
    assert not path.exists() and not (out / "run.json").exists()
    assert leftovers(out) == []

    code, stdout, _ = run_cli(capsys, *args)
    assert code == 0 and stdout.strip() == str(out)
    assert (out / "run.json").is_file() and read_jsonl(out / "train_log.jsonl")


def test_evaluate_disk_full_keeps_the_old_results_then_a_rerun_works(
    tiny_ner_run: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = copy_run(tiny_ner_run, tmp_path / "run")
    base = ["--data-dir", fixture_data_root, "evaluate", run, "--n-resamples", "10"]
    assert run_cli(capsys, *base, "--datasets", "tl_trg")[0] == 0
    old_results = (run / "results.json").read_bytes()

    # Half of confidence/ceb_gja.jsonl fits: no confidence file, results.json unchanged.
    with full_disk(monkeypatch, "ceb_gja.jsonl", room=300) as disk:
        code, _, err = run_cli(capsys, *base, "--datasets", "ceb_gja")
    assert disk.failures and code == 1
    conf = run / "confidence" / "ceb_gja.jsonl"
    assert _error_line(err) == (f"picomaml: error: {conf}: No space left on device (ENOSPC)")
    assert not conf.exists() and (run / "results.json").read_bytes() == old_results
    assert leftovers(run) == []

    # results.json itself: the old one stays whole.
    with full_disk(monkeypatch, "results.json", room=100):
        code, _, err = run_cli(capsys, *base, "--datasets", "ceb_gja")
    assert code == 1 and "results.json: No space left on device (ENOSPC)" in _error_line(err)
    assert (run / "results.json").read_bytes() == old_results and leftovers(run) == []

    assert run_cli(capsys, *base, "--datasets", "ceb_gja")[0] == 0
    results = read_json(run / "results.json")
    assert set(results["datasets"]) == {"tl_trg", "ceb_gja"}
    n = results["datasets"]["ceb_gja"]["n_sentences"]
    assert len(read_jsonl(conf)) == n > 0


def test_read_only_file_system_is_one_line(
    tiny_ner_run: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = copy_run(tiny_ner_run, tmp_path / "run")
    with full_disk(monkeypatch, "results.json", fail_open=errno.EROFS):
        code, _, err = run_cli(
            capsys, "--data-dir", fixture_data_root, "evaluate", run, "--datasets", "tl_trg"
        )
    assert code == 1
    assert _error_line(err) == (
        f"picomaml: error: {run / 'results.json'}: Read-only file system (EROFS)"
    )
    assert not (run / "results.json").exists() and leftovers(run) == []


@pytest.fixture()
def pretrain_config(fixture_data_root: Path, tmp_path: Path) -> Path:
    from picomaml.config import to_dict
    from tests.pretrain.tiny import small_corpus, tiny_config

    corpus = small_corpus(fixture_data_root, tmp_path / "corpus")
    # AR only, one micro-batch: the faults are in the writes, not in the training step.
    cfg = tiny_config(corpus, tmp_path / "cache", "meta.enabled=false", "training.batch_size=4")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    return path


def _train_steps(run: Path) -> list[int]:
    return [r["step"] for r in read_jsonl(run / "metrics.jsonl") if r.get("kind") == "train"]


def test_pretrain_interrupt_and_faults_then_resume_finishes(
    pretrain_config: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    umask_022: None,
) -> None:
    from picomaml.pretrain.trainer import Trainer

    run = tmp_path / "run"
    ckpts = run / "checkpoints"
    # Overrides before, between and after the flags; --data-dir after the command (defect 7).
    args = ["pretrain", "training.max_steps=2", "--config", pretrain_config, "logging.every=1"]
    args += ["--run-dir", run, "checkpointing.every=1", "--data-dir", fixture_data_root]

    # 10: Ctrl-C at step 2 (step 1 is checkpointed) while the progress bar is drawn: the
    # bar's last line comes before "interrupted", never after it.
    real_log = Trainer._log

    def interrupt_at_step_2(self: Trainer, record: dict) -> None:
        if record["step"] == 2:
            raise KeyboardInterrupt
        real_log(self, record)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_log", interrupt_at_step_2)
        code, _, err = run_cli(capsys, *args, "logging.progress_bar=true")
    assert code == 130 and "pretrain" in err  # the bar was drawn
    assert [x for x in err.replace("\r", "\n").splitlines() if x.strip()][-1] == (
        "picomaml: interrupted"
    )
    assert (ckpts / "latest").read_text().strip() == "step_1"
    metrics_at_1 = (run / "metrics.jsonl").read_bytes()
    assert _train_steps(run) == [1]

    # 1: the checkpoint's model.safetensors (19 MB) is cut short by the kernel (written by
    # safetensors' Rust code, out of Python's reach).
    with file_size_limit(1_000_000):
        code, _, err = run_cli(capsys, *args, "--resume")
    assert code == 1
    bad = ckpts / "step_2.tmp" / "model.safetensors"
    assert _error_line(err) == f"picomaml: error: {bad}: File too large (EFBIG)"
    assert (ckpts / "latest").read_text().strip() == "step_1"
    assert not (ckpts / "step_2").exists() and leftovers(run) == []

    # 1: the disk fills in the middle of a metrics line: the log keeps only whole records.
    room = len(metrics_at_1) + 30  # the resume rewrites the log up to step 1, then 30 bytes
    with full_disk(monkeypatch, "metrics.jsonl", room=room) as disk:
        code, _, err = run_cli(capsys, *args, "--resume")
    assert disk.failures and code == 1
    assert _error_line(err) == (
        f"picomaml: error: {run / 'metrics.jsonl'}: No space left on device (ENOSPC)"
    )
    assert (run / "metrics.jsonl").read_bytes() == metrics_at_1
    assert (ckpts / "latest").read_text().strip() == "step_1" and leftovers(run) == []

    code, out, err = run_cli(capsys, *args, "--resume")
    assert code == 0 and "latest checkpoint step_2" in out, err
    assert _train_steps(run) == [1, 2]
    # 9: checkpoint files follow the umask like any file (safetensors alone would give 0600).
    for path in (ckpts / "step_2").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_report_disk_full_keeps_the_old_report_then_a_rerun_works(
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.study.test_report import make_results

    res = make_results(tmp_path, sweep=False)
    args = ["report", res, "--data-dir", fixture_data_root]
    with full_disk(monkeypatch, ".png", room=2000) as disk:  # mid-figure (PIL writes it)
        code, _, err = run_cli(capsys, *args)
    assert code == 1 and disk.failures
    line = _error_line(err)
    assert line.startswith(f"picomaml: error: {res / 'figures'}") and line.endswith("(ENOSPC)")
    assert not (res / "report.md").exists() and leftovers(res) == []

    assert run_cli(capsys, *args)[0] == 0
    old = (res / "report.md").read_bytes()
    with full_disk(monkeypatch, "report.md", room=100):
        code, _, err = run_cli(capsys, *args)
    assert code == 1 and _error_line(err) == (
        f"picomaml: error: {res / 'report.md'}: No space left on device (ENOSPC)"
    )
    assert (res / "report.md").read_bytes() == old and leftovers(res) == []
    figures = list((res / "figures").glob("*.png"))
    assert figures and all(p.read_bytes().startswith(b"\x89PNG") for p in figures)

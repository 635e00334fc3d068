"""Fault paths of issue 10, one section per defect: every one ends in the exit code and the
single ``picomaml: error: ...`` line a user sees (never a traceback), and leaves no partial
file that a later command would read as valid; after a fault the next run (or ``--resume``)
works.

1. full disk / read-only file system: one line naming the path and cause, exit 1, no partial
   file (finetune, evaluate, pretrain checkpoints and metrics, report), then a clean rerun;
2. ``tag`` and Unicode: ``tests/ner/test_tag_text_unicode.py``;
3. a corrupt ``crf_head.safetensors``; 4. impossible backbone ``config.json`` values;
5. ``evaluate --datasets`` and output dirs checked before any work;
6. data changes (tags read as O, repairs, BOM, CRLF) printed, one line per file;
7. overrides anywhere on the line, ``--data-dir`` after every command;
8. progress bars for evaluate and feature extraction;
9. files created with the default permissions;
10. small ones: ``--help`` text, Ctrl-C at exit, no bar after "interrupted", a broken
    ``finetune.yaml``, relative paths in the report;
11. ``results.json`` says what produced it.

Most cases call the CLI in-process (``main([...])``, exit code and captured stderr); a few run
the real ``picomaml`` process where the process itself is the point. Faults are simulated by
``tests/cli/diskfull.py``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
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
from picomaml.model import PicoConfig, PicoDecoder, save_pico
from tests.cli.diskfull import file_size_limit, full_disk, leftovers

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


def _error_line(stderr: str) -> str:
    """The ``picomaml: error: ...`` line that ends a command which printed progress first:
    the only error line, the last line, and no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("picomaml: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    return errors[0]


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


# --- shared --------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run the CLI in-process: exit code, stdout, stderr."""
    code = cli_main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


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
            code, stdout, err = _cli(capsys, *args)
        assert disk.failures, "the fault was never reached"
        cause = "No space left on device (ENOSPC)"
    else:
        with file_size_limit(1000):  # finetune.yaml and the log fit, the head does not
            code, stdout, err = _cli(capsys, *args)
        cause = "File too large (EFBIG)"
    assert code == 1 and stdout == ""
    path = out / (HEAD if target == "crf_head.safetensors" else target)
    assert _error_line(err) == f"picomaml: error: {path}: {cause}"
    assert not path.exists() and not (out / "run.json").exists()
    assert leftovers(out) == []

    code, stdout, _ = _cli(capsys, *args)
    assert code == 0 and stdout.strip() == str(out)
    assert (out / "run.json").is_file() and read_jsonl(out / "train_log.jsonl")


def test_evaluate_disk_full_keeps_the_old_results_then_a_rerun_works(
    tiny_ner_run: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = _copy_run(tiny_ner_run, tmp_path / "run")
    base = ["--data-dir", fixture_data_root, "evaluate", run, "--n-resamples", "10"]
    assert _cli(capsys, *base, "--datasets", "tl_trg")[0] == 0
    old_results = (run / "results.json").read_bytes()

    # Half of confidence/ceb_gja.jsonl fits: no confidence file, results.json unchanged.
    with full_disk(monkeypatch, "ceb_gja.jsonl", room=300) as disk:
        code, _, err = _cli(capsys, *base, "--datasets", "ceb_gja")
    assert disk.failures and code == 1
    conf = run / "confidence" / "ceb_gja.jsonl"
    assert _error_line(err) == (f"picomaml: error: {conf}: No space left on device (ENOSPC)")
    assert not conf.exists() and (run / "results.json").read_bytes() == old_results
    assert leftovers(run) == []

    # results.json itself: the old one stays whole.
    with full_disk(monkeypatch, "results.json", room=100):
        code, _, err = _cli(capsys, *base, "--datasets", "ceb_gja")
    assert code == 1 and "results.json: No space left on device (ENOSPC)" in _error_line(err)
    assert (run / "results.json").read_bytes() == old_results and leftovers(run) == []

    assert _cli(capsys, *base, "--datasets", "ceb_gja")[0] == 0
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
    run = _copy_run(tiny_ner_run, tmp_path / "run")
    with full_disk(monkeypatch, "results.json", fail_open=errno.EROFS):
        code, _, err = _cli(
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
        code, _, err = _cli(capsys, *args, "logging.progress_bar=true")
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
        code, _, err = _cli(capsys, *args, "--resume")
    assert code == 1
    bad = ckpts / "step_2.tmp" / "model.safetensors"
    assert _error_line(err) == f"picomaml: error: {bad}: File too large (EFBIG)"
    assert (ckpts / "latest").read_text().strip() == "step_1"
    assert not (ckpts / "step_2").exists() and leftovers(run) == []

    # 1: the disk fills in the middle of a metrics line: the log keeps only whole records.
    room = len(metrics_at_1) + 30  # the resume rewrites the log up to step 1, then 30 bytes
    with full_disk(monkeypatch, "metrics.jsonl", room=room) as disk:
        code, _, err = _cli(capsys, *args, "--resume")
    assert disk.failures and code == 1
    assert _error_line(err) == (
        f"picomaml: error: {run / 'metrics.jsonl'}: No space left on device (ENOSPC)"
    )
    assert (run / "metrics.jsonl").read_bytes() == metrics_at_1
    assert (ckpts / "latest").read_text().strip() == "step_1" and leftovers(run) == []

    code, out, err = _cli(capsys, *args, "--resume")
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
        code, _, err = _cli(capsys, *args)
    assert code == 1 and disk.failures
    line = _error_line(err)
    assert line.startswith(f"picomaml: error: {res / 'figures'}") and line.endswith("(ENOSPC)")
    assert not (res / "report.md").exists() and leftovers(res) == []

    assert _cli(capsys, *args)[0] == 0
    old = (res / "report.md").read_bytes()
    with full_disk(monkeypatch, "report.md", room=100):
        code, _, err = _cli(capsys, *args)
    assert code == 1 and _error_line(err) == (
        f"picomaml: error: {res / 'report.md'}: No space left on device (ENOSPC)"
    )
    assert (res / "report.md").read_bytes() == old and leftovers(res) == []
    figures = list((res / "figures").glob("*.png"))
    assert figures and all(p.read_bytes().startswith(b"\x89PNG") for p in figures)


# --- 5. arguments checked before any work --------------------------------------------------


def test_evaluate_checks_dataset_codes_before_loading_the_model(
    tiny_ner_run: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import picomaml.ner.evaluate as evaluate

    def no_work(*_a: object, **_k: object) -> None:
        raise AssertionError("the run was loaded before the arguments were checked")

    run = _copy_run(tiny_ner_run, tmp_path / "run")
    monkeypatch.setattr(evaluate, "load_run", no_work)
    args = ["--data-dir", fixture_data_root, "evaluate", run, "--datasets", "tl_trg", "xx_bad"]
    code, _, err = _cli(capsys, *args)
    assert code == 2
    assert _one_line_error(err).startswith(
        "picomaml: error: --datasets: unknown code(s) xx_bad; valid codes: da_ddt"
    )
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in tiny_ner_run.iterdir())


def test_evaluate_checks_its_output_dirs_before_scoring(
    tiny_ner_run: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = _copy_run(tiny_ner_run, tmp_path / "run")
    (run / "predictions").write_text("not a folder")
    code, _, err = _cli(
        capsys, "--data-dir", fixture_data_root, "evaluate", run, "--datasets", "tl_trg"
    )
    assert code == 2
    assert _one_line_error(err) == (
        f"picomaml: error: {run / 'predictions'} exists and is not a directory; move it away"
    )
    assert not (run / "confidence").exists() or not any((run / "confidence").iterdir())
    assert not (run / "results.json").exists()


# --- 6. data changes are printed -----------------------------------------------------------


def test_data_changes_are_one_line_per_file(fixture_data_root: Path) -> None:
    from picomaml.ner.head import load_sentences

    lines: list[str] = []
    load_sentences("pt_bosque", "dev", fixture_data_root, log=lines.append)
    load_sentences("sv_talbanken", "test", fixture_data_root, log=lines.append)
    load_sentences("sk_snk", "train", fixture_data_root, log=lines.append)  # nothing changed
    uner = fixture_data_root / "uner"
    assert lines == [
        f"data pt_bosque dev ({uner / 'UNER_Portuguese-Bosque' / 'pt_bosque-ud-dev.iob2'}): "
        "CRLF line ends read as LF",
        f"data sv_talbanken test ({uner / 'UNER_Swedish-Talbanken' / 'sv_talbanken-ud-test.iob2'})"
        ": UTF-8 byte-order mark dropped",
    ]
    lines.clear()
    _, info = load_sentences("all", "train", fixture_data_root, log=lines.append)
    assert [line.split(" (")[0] for line in lines] == [
        "data da_ddt train",
        "data en_ewt train",
        "data hr_set train",
    ]
    assert lines[0].endswith(": stray I- read as B-: 2")
    assert lines[1].endswith(": tags read as O: B-O 2, B-OTH 3, I-OTH 2")
    assert lines[2].endswith(": tags read as O: B-OTH 1, I-OTH 1; stray I- read as B-: 1")
    assert info["read_report"]["mapped_to_o"] == {"B-O": 2, "B-OTH": 4, "I-OTH": 3}


# --- 7, 8, 9: one fine-tune through the CLI ------------------------------------------------


def test_finetune_overrides_anywhere_progress_data_lines_and_modes(
    backbone: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    umask_022: None,
) -> None:
    out = tmp_path / "ft"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # progress bars as on a terminal
    code, _, err = _cli(
        capsys,
        "finetune",
        "epochs=1",
        "--out",
        out,
        "max_train_sentences=6",
        "--backbone",
        backbone,
        "device=cpu",
        "--source",
        "en_ewt",
        "--data-dir",
        fixture_data_root,
        "batch_size=3",
    )
    assert code == 0, err
    cfg = yaml.safe_load((out / "finetune.yaml").read_text())
    assert (cfg["epochs"], cfg["max_train_sentences"], cfg["batch_size"]) == (1, 6, 3)
    assert cfg["source"] == "en_ewt" and cfg["device"] == "cpu"
    train_file = fixture_data_root / "uner" / "UNER_English-EWT" / "en_ewt-ud-train.iob2"
    assert f"data en_ewt train ({train_file}): tags read as O: B-O 2, B-OTH 3, I-OTH 2\n" in err
    assert "features en_ewt train" in err and "features en_ewt dev" in err  # tqdm bars
    assert "Traceback" not in err
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.relative_to(out).as_posix() for p in files} == {
        "finetune.yaml",
        "train_log.jsonl",
        "run.json",
        "model/crf_head.safetensors",
    }
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path  # not 0600


def test_every_command_takes_data_dir_after_it() -> None:
    from picomaml.cli.main import _subparsers, build_parser

    parsers = _subparsers(build_parser())
    assert len(parsers) > 15
    for parser in parsers:
        action = parser._option_string_actions.get("--data-dir")
        assert action is not None and action.dest == "sub_data_dir", parser.prog


@pytest.mark.parametrize(
    "command,handler",
    [
        (["grid", "g.yaml", "a.b=1", "--workers", "2", "c.d=2"], "picomaml.cli.study.grid_command"),
        (["finetune", "a=1", "--out", "X", "b=2"], "picomaml.cli.finetune.run"),
        (["pretrain", "a.b=1", "--config", "c.yaml", "c.d=2"], "picomaml.cli.pretrain.run"),
    ],
)
def test_overrides_anywhere_on_the_line(
    command: list[str], handler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = {}
    monkeypatch.setattr(handler, lambda args: seen.update(vars(args)) or 0)
    assert cli_main([*command, "--data-dir", "D"]) == 0
    assert seen["overrides"] == [x for x in command if "=" in x]
    assert seen["sub_data_dir"] == "D"


def test_data_stats_and_tag_take_data_dir_after_the_command(
    tiny_ner_run: Path, fixture_data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(
        capsys, "data", "stats", "sk_snk", "--split", "dev", "--data-dir", fixture_data_root
    )
    assert code == 0 and out.startswith("sk_snk dev: 6 sentences")
    code, out, _ = _cli(capsys, "tag", tiny_ner_run, "--data-dir", fixture_data_root, "Salamat")
    assert code == 0 and "Salamat" in out


# --- 8. progress of evaluate ---------------------------------------------------------------


def test_evaluate_shows_a_progress_bar_per_dataset(
    tiny_ner_run: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = _copy_run(tiny_ner_run, tmp_path / "run")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    args = ["--data-dir", fixture_data_root, "evaluate", run, "--n-resamples", "10"]
    code, _, err = _cli(capsys, *args, "--datasets", "tl_trg", "ceb_gja")
    assert code == 0
    for name in ("tl_trg", "ceb_gja"):
        bar = re.search(rf"evaluate {name}: +\d+%\|", err)  # tqdm: desc, percent, bar, rate
        assert bar is not None, err
        assert "window/s]" in err[bar.end() :] and err.index(f"evaluate {name}: F1 ") > bar.end()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)  # not a terminal: no bars
    _, _, err = _cli(capsys, *args, "--datasets", "tl_trg")
    assert "window" not in err and "\r" not in err


# --- 10. small ones ------------------------------------------------------------------------


def test_evaluate_help_says_95_percent(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["evaluate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "bootstrap 95% CI" in out and "%%" not in out


def test_ctrl_c_while_the_interpreter_exits_is_no_traceback(tmp_path: Path) -> None:
    script = (
        "import atexit, os, signal, sys, time\n"
        "from picomaml.cli.main import console_main\n"
        "def late():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(5)\n"
        "atexit.register(late)\n"
        "sys.argv = ['picomaml', 'model', 'info', '--size', 'tiny']\n"
        "console_main()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == -signal.SIGINT  # ended by the signal, as a shell expects
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert "tiny" in proc.stdout  # the command's output was flushed first


def test_broken_finetune_yaml_is_one_line(
    tiny_ner_run: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = _copy_run(tiny_ner_run, tmp_path / "run")
    text = (run / "finetune.yaml").read_text()
    (run / "finetune.yaml").write_text(text.replace("epochs: 1", "epochs: [1, 2"))
    code, _, err = _cli(
        capsys, "--data-dir", fixture_data_root, "evaluate", run, "--datasets", "tl_trg"
    )
    assert code == 2
    line = _one_line_error(err)
    assert line.startswith(f"picomaml: error: {run / 'finetune.yaml'}:")
    assert "not valid YAML (while parsing a flow sequence" in line


# --- 11. results.json says what produced it ------------------------------------------------


def test_results_json_is_self_describing(
    tiny_ner_run: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import datetime as dt

    import picomaml

    run = _copy_run(tiny_ner_run, tmp_path / "run")
    args = ["--data-dir", fixture_data_root, "evaluate", run, "--datasets", "tl_trg"]
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    assert _cli(capsys, *args, "--n-resamples", "10")[0] == 0
    results = read_json(run / "results.json")
    prov = results["provenance"]
    assert prov["picomaml"] == picomaml.__version__
    assert prov["torch"] == torch.__version__.split("+")[0] or prov["torch"] == torch.__version__
    assert prov["seqeval"] and prov["python"]
    created = dt.datetime.fromisoformat(prov["created_utc"])
    assert created.utcoffset() == dt.timedelta(0) and created >= before
    if prov["git_commit"] is not None:  # a checkout: the commit of this code
        assert len(prov["git_commit"]) == 40 and isinstance(prov["git_dirty"], bool)
    ft = results["finetune"]
    assert (ft["epochs"], ft["batch_size"], ft["source"]) == (1, 8, "sk_snk")
    assert {"patience", "constraints", "lr"} <= set(ft)
    assert results["evaluate"] == {"n_resamples": 10, "seed": 0, "device": "cpu"}

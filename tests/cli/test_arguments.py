"""Fault paths of issue 10, sections 5 to 11 (1 to 4 are in ``test_faults.py``):

5. ``evaluate --datasets`` and output dirs checked before any work;
6. data changes (tags read as O, repairs, BOM, CRLF) printed, one line per file;
7. overrides anywhere on the line, ``--data-dir`` after every command;
8. progress bars for evaluate and feature extraction;
9. files created with the default permissions;
10. small ones: ``--help`` text, Ctrl-C at exit, no bar after "interrupted", a broken
    ``finetune.yaml``, relative paths in the report;
11. ``results.json`` says what produced it.
"""

from __future__ import annotations

import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from picomaml.cli.main import main as cli_main
from picomaml.fileio import read_json
from tests.cli.run_cli import copy_run, one_line_error, run_cli

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

    run = copy_run(tiny_ner_run, tmp_path / "run")
    monkeypatch.setattr(evaluate, "load_run", no_work)
    args = ["--data-dir", fixture_data_root, "evaluate", run, "--datasets", "tl_trg", "xx_bad"]
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert one_line_error(err).startswith(
        "picomaml: error: --datasets: unknown code(s) xx_bad; valid codes: da_ddt"
    )
    assert sorted(p.name for p in run.iterdir()) == sorted(p.name for p in tiny_ner_run.iterdir())


def test_evaluate_checks_its_output_dirs_before_scoring(
    tiny_ner_run: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = copy_run(tiny_ner_run, tmp_path / "run")
    (run / "predictions").write_text("not a folder")
    code, _, err = run_cli(
        capsys, "--data-dir", fixture_data_root, "evaluate", run, "--datasets", "tl_trg"
    )
    assert code == 2
    assert one_line_error(err) == (
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
    code, _, err = run_cli(
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
    code, out, _ = run_cli(
        capsys, "data", "stats", "sk_snk", "--split", "dev", "--data-dir", fixture_data_root
    )
    assert code == 0 and out.startswith("sk_snk dev: 6 sentences")
    code, out, _ = run_cli(capsys, "tag", tiny_ner_run, "--data-dir", fixture_data_root, "Salamat")
    assert code == 0 and "Salamat" in out


# --- 8. progress of evaluate ---------------------------------------------------------------


def test_evaluate_shows_a_progress_bar_per_dataset(
    tiny_ner_run: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = copy_run(tiny_ner_run, tmp_path / "run")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    args = ["--data-dir", fixture_data_root, "evaluate", run, "--n-resamples", "10"]
    code, _, err = run_cli(capsys, *args, "--datasets", "tl_trg", "ceb_gja")
    assert code == 0
    for name in ("tl_trg", "ceb_gja"):
        bar = re.search(rf"evaluate {name}: +\d+%\|", err)  # tqdm: desc, percent, bar, rate
        assert bar is not None, err
        assert "window/s]" in err[bar.end() :] and err.index(f"evaluate {name}: F1 ") > bar.end()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)  # not a terminal: no bars
    _, _, err = run_cli(capsys, *args, "--datasets", "tl_trg")
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
    run = copy_run(tiny_ner_run, tmp_path / "run")
    text = (run / "finetune.yaml").read_text()
    (run / "finetune.yaml").write_text(text.replace("epochs: 1", "epochs: [1, 2"))
    code, _, err = run_cli(
        capsys, "--data-dir", fixture_data_root, "evaluate", run, "--datasets", "tl_trg"
    )
    assert code == 2
    line = one_line_error(err)
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

    run = copy_run(tiny_ner_run, tmp_path / "run")
    args = ["--data-dir", fixture_data_root, "evaluate", run, "--datasets", "tl_trg"]
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    assert run_cli(capsys, *args, "--n-resamples", "10")[0] == 0
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

"""``evaluate`` faults of issue 22: one writer per run dir, merge-safe results.json, damaged
results.json, seed range. Each case calls the CLI in-process on a copy of ``tiny_ner_run``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import picomaml.ner.evaluate as evaluate
from picomaml.cli.main import main as cli_main
from tests.fixtures.holder import held_elsewhere


@pytest.fixture
def run(tiny_ner_run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_ner_run, tmp_path / "run"))


def _evaluate(root: Path, run: Path, *extra: str) -> int:
    args = ["--data-dir", str(root), "evaluate", str(run), "--n-resamples", "10", *extra]
    return cli_main(args)


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err.strip()


def test_a_second_evaluate_fails_at_once_and_loses_nothing(
    run: Path, fixture_data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _evaluate(fixture_data_root, run, "--datasets", "tl_trg") == 0
    capsys.readouterr()
    before = (run / "results.json").read_bytes()
    with held_elsewhere(run, "evaluate") as other:
        assert _evaluate(fixture_data_root, run, "--datasets", "ceb_gja") == 2
        line = _one_line(capsys)
    assert line == (
        f"picomaml: error: {run} is in use by another picomaml process (PID {other.pid}, "
        "evaluate); wait for it to end or use another directory"
    )
    assert (run / "results.json").read_bytes() == before
    assert _evaluate(fixture_data_root, run, "--datasets", "ceb_gja") == 0
    datasets = json.loads((run / "results.json").read_text())["datasets"]
    assert sorted(datasets) == ["ceb_gja", "tl_trg"]


def test_results_are_read_again_just_before_they_are_written(
    run: Path, fixture_data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What another writer put into results.json while this one scored is merged, not lost
    (an older picomaml that took no lock, a hand edit)."""
    real = evaluate.score_dataset

    def scoring_while_someone_writes(*args, **kwargs):
        entry = real(*args, **kwargs)
        (run / "results.json").write_text(json.dumps({"run": {}, "datasets": {"tl_trg": 1}}))
        return entry

    monkeypatch.setattr(evaluate, "score_dataset", scoring_while_someone_writes)
    assert _evaluate(fixture_data_root, run, "--datasets", "ceb_gja") == 0
    datasets = json.loads((run / "results.json").read_text())["datasets"]
    assert sorted(datasets) == ["ceb_gja", "tl_trg"]


@pytest.mark.parametrize(
    "content,what",
    [
        ('{"run": {}, "datasets": {"tl_trg": {"n_sentences": 8, "def', "not valid JSON"),
        ("[1, 2, 3]", "expected a JSON object, got list"),
        ('"results"', "expected a JSON object, got str"),
        ('{"run": {}, "datasets": [1]}', "'datasets' is not an object"),
    ],
)
def test_a_damaged_results_json_is_an_error_and_is_never_overwritten(
    run: Path,
    fixture_data_root: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    what: str,
) -> None:
    (run / "results.json").write_text(content)
    monkeypatch.setattr(evaluate, "load_run", lambda *a, **k: pytest.fail("work started"))
    assert _evaluate(fixture_data_root, run, "--datasets", "ceb_gja") == 2
    line = _one_line(capsys)
    assert line.startswith(f"picomaml: error: {run / 'results.json'}: {what}")
    assert (run / "results.json").read_text() == content


@pytest.mark.parametrize("seed", ["-1", "4294967296", "x"])
def test_seed_out_of_range_is_one_line(
    run: Path, fixture_data_root: Path, capsys: pytest.CaptureFixture[str], seed: str
) -> None:
    assert _evaluate(fixture_data_root, run, "--seed", seed) == 2
    line = _one_line(capsys)
    assert line.startswith("picomaml: error: --seed: expected an integer")
    with pytest.raises(evaluate.PicomamlError, match=r"--seed: expected a seed in 0\.\.4294967295"):
        evaluate.evaluate_run(run, fixture_data_root, seed=-1)

"""``finetune`` faults of issue 22: one run per ``--out``, non-finite numbers, stale
temporaries, SIGTERM. The CLI runs in-process on the tiny backbone of ``tiny_ner_run``."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import pytest
import torch

from picomaml.cli.main import main as cli_main
from picomaml.ner.crf import CRFTagger
from tests.cli.diskfull import leftovers
from tests.fixtures.holder import held_elsewhere
from tests.fixtures.sigterm import sigterm_mid_call

SMALL = ["max_train_sentences=16", "max_dev_sentences=16", "epochs=2", "batch_size=8"]


def _finetune(root: Path, backbone: Path, out: Path, *extra: str) -> int:
    args = ["--data-dir", str(root), "finetune", "--backbone", str(backbone), "--source"]
    return cli_main([*args, "sk_snk", "--out", str(out), "device=cpu", *SMALL, *extra])


def _last_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.splitlines()[-1]


@pytest.fixture
def backbone(tiny_ner_run: Path) -> Path:
    return tiny_ner_run.parent / "backbone"


def test_a_second_run_on_the_same_out_fails_at_once(
    backbone: Path, fixture_data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ft"
    with held_elsewhere(out, "finetune") as other:
        assert _finetune(fixture_data_root, backbone, out) == 2
        assert capsys.readouterr().err == (
            f"picomaml: error: {out} is in use by another picomaml process (PID {other.pid}, "
            "finetune); wait for it to end or use another directory\n"
        )
        assert sorted(p.name for p in out.iterdir()) == [".picomaml.lock"]


@pytest.mark.parametrize("override", ["lr.head=.inf", "lr.head=.nan", "weight_decay=-.inf"])
def test_non_finite_config_numbers_are_refused(
    backbone: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    override: str,
) -> None:
    assert _finetune(fixture_data_root, backbone, tmp_path / "ft", override) == 2
    key = override.split("=")[0]
    assert f"picomaml: error: {key}: expected a finite number" in _last_line(capsys)
    assert not (tmp_path / "ft").exists()


def test_a_non_finite_loss_stops_the_run_and_it_is_not_finished(
    backbone: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = CRFTagger.nll
    calls = []

    def exploding(self: CRFTagger, *args, **kwargs):
        calls.append(1)
        loss = real(self, *args, **kwargs)
        return loss * math.inf if len(calls) == 2 else loss

    monkeypatch.setattr(CRFTagger, "nll", exploding)
    out = tmp_path / "ft"
    assert _finetune(fixture_data_root, backbone, out) == 2
    line = _last_line(capsys)
    assert line.startswith("picomaml: error: non-finite training loss (inf) at step 2 (epoch 1)")
    assert "Lower lr.head (now 3e-05)" in line
    assert not (out / "run.json").exists() and not (out / "train_log.jsonl").exists()
    assert not leftovers(out)
    monkeypatch.setattr(CRFTagger, "nll", real)
    assert _finetune(fixture_data_root, backbone, out) == 0  # not finished: no --force needed
    assert "Infinity" not in (out / "run.json").read_text()


def test_a_non_finite_best_state_is_never_written(
    backbone: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import picomaml.ner.finetune as ft

    def nan_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {k: torch.full_like(v, math.nan) for k, v in module.state_dict().items()}

    monkeypatch.setattr(ft, "_state_copy", nan_copy)
    out = tmp_path / "ft"
    assert _finetune(fixture_data_root, backbone, out) == 2
    assert "the best state has non-finite values in" in _last_line(capsys)
    assert not (out / "run.json").exists()


def test_stale_temporaries_of_a_killed_run_are_removed(
    backbone: Path, fixture_data_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ft"
    (out / "model").mkdir(parents=True)
    stale = [out / ".run.json.99999.0.tmp", out / ".finetune.yaml.99999.1.tmp"]
    stale.append(out / "model" / ".crf_head.safetensors.99999.2.tmp")
    for path in stale:
        path.write_text("half")
    assert _finetune(fixture_data_root, backbone, out) == 0
    assert not leftovers(out) and json.loads((out / "run.json").read_text())["steps"] > 0


def test_sigterm_stops_finetune_cleanly_with_143(
    backbone: Path,
    fixture_data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = CRFTagger.nll
    calls = []

    def terminated_mid_training(self: CRFTagger, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` or SLURM would
        return real(self, *args, **kwargs)

    monkeypatch.setattr(CRFTagger, "nll", terminated_mid_training)
    out = tmp_path / "ft"
    assert _finetune(fixture_data_root, backbone, out) == 143
    assert _last_line(capsys) == "picomaml: terminated (SIGTERM)"
    assert not (out / "run.json").exists() and not leftovers(out)
    assert not (out / ".picomaml.lock").exists()
    monkeypatch.setattr(CRFTagger, "nll", real)
    assert _finetune(fixture_data_root, backbone, out) == 0


def test_sigterm_to_a_real_finetune_process_exits_143_with_one_line(
    backbone: Path, fixture_data_root: Path, tmp_path: Path
) -> None:
    """As ``kill PID`` meets it: a subprocess whose second CRF step is slowed, signalled
    mid-step. The training log being written is a temporary then, and must not stay."""
    out = tmp_path / "ft"
    args = ["--data-dir", str(fixture_data_root), "finetune", "--backbone", str(backbone)]
    args += ["--source", "sk_snk", "--out", str(out), "device=cpu", *SMALL]
    mid_run: list[list[Path]] = []
    code, err = sigterm_mid_call(
        tmp_path,
        "picomaml.ner.crf:CRFTagger.nll",
        args,
        after=1,
        before_signal=lambda: mid_run.append(leftovers(out)),
    )
    assert mid_run[0], "no temporary file while training: the check below would prove nothing"
    assert code == 143, err
    assert "Traceback" not in err and err.splitlines()[-1] == "picomaml: terminated (SIGTERM)"
    assert not (out / "run.json").exists() and not leftovers(out)
    assert not (out / ".picomaml.lock").exists()

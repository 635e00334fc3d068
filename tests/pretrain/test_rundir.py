"""The pretraining run dir of issue 22: one run per dir (two ``--resume`` jobs would append
the same metrics twice), SIGTERM then ``--resume``, stale temporaries of a killed run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import yaml

from picomaml.cli.main import main
from picomaml.config import to_dict
from picomaml.errors import PicomamlError
from picomaml.fileio import read_jsonl
from picomaml.pretrain.rundir import check_same_run
from picomaml.pretrain.trainer import Trainer
from tests.cli.diskfull import leftovers
from tests.fixtures.holder import held_elsewhere
from tests.fixtures.sigterm import sigterm_mid_call
from tests.pretrain.tiny import small_corpus, tiny_config


@pytest.fixture()
def argv(tmp_path: Path, fixture_data_root: Path) -> list[str]:
    cfg = tiny_config(small_corpus(fixture_data_root, tmp_path / "corpus"), tmp_path / "cache")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    run = tmp_path / "run"
    args = ["--data-dir", str(fixture_data_root), "pretrain", "--config", str(path)]
    return [*args, "--run-dir", str(run), "checkpointing.every=1", "logging.every=1"]


def _steps(run: Path) -> list[int]:
    return [r["step"] for r in read_jsonl(run / "metrics.jsonl") if r.get("kind") == "train"]


def test_a_second_run_on_the_run_dir_fails_at_once(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert main([*argv, "--stop-at-step", "1"]) == 0
    before = (run / "metrics.jsonl").read_bytes()
    capsys.readouterr()
    with held_elsewhere(run, "pretrain") as other:
        assert main([*argv, "--resume"]) == 2
        err = capsys.readouterr().err
    assert err == (
        f"picomaml: error: {run} is in use by another picomaml process (PID {other.pid}, "
        "pretrain); wait for it to end or use another directory\n"
    )
    assert (run / "metrics.jsonl").read_bytes() == before


def test_sigterm_then_resume_and_stale_temporaries(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    run = tmp_path / "run"
    real = Trainer.train_step

    def terminated_at_step_2(self: Trainer, *args, **kwargs):
        if self.step == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_step", terminated_at_step_2)
    assert main(argv) == 143
    assert capsys.readouterr().err.splitlines()[-1] == "picomaml: terminated (SIGTERM)"
    assert (run / "checkpoints" / "latest").read_text() == "step_1\n" and _steps(run) == [1]
    # What a writer killed with SIGKILL would leave: removed by the next run.
    (run / "checkpoints" / "step_2.tmp").mkdir()
    (run / "checkpoints" / "step_2.tmp" / "model.safetensors").write_text("half")
    (run / ".config.yaml.99999.0.tmp").write_text("half")
    monkeypatch.setattr(Trainer, "train_step", real)
    assert main([*argv, "--resume"]) == 0
    assert _steps(run) == [1, 2, 3] and not leftovers(run)


def test_a_run_from_before_a_key_existed_resumes_with_its_legacy_value(tmp_path: Path) -> None:
    """A config.yaml written before ``meta.learner`` and ``meta.heldout_share`` existed ran
    query_only with no held-out words: resuming it needs exactly those settings."""
    saved = {"meta": {"enabled": True, "rho": 0.5}}
    old = {"meta": {"enabled": True, "rho": 0.5, "learner": "query_only", "heldout_share": 0.0}}
    check_same_run(saved, old, tmp_path / "config.yaml")
    new = {"meta": {"enabled": True, "rho": 0.5, "learner": "protonet", "heldout_share": 0.1}}
    with pytest.raises(PicomamlError) as err:
        check_same_run(saved, new, tmp_path / "config.yaml")
    assert "meta.learner: 'query_only' in the run, 'protonet' now" in str(err.value)
    assert "meta.heldout_share: 0.0 in the run, 0.1 now" in str(err.value)


def test_sigterm_to_a_real_pretrain_process_mid_checkpoint_then_resume(
    argv: list[str], tmp_path: Path
) -> None:
    """As ``kill PID`` meets it: a subprocess signalled while it writes the step-2 checkpoint
    (the weights writer slowed). The half-written ``step_2.tmp`` goes, step 1 stays latest,
    and ``--resume`` goes on from there."""
    run = tmp_path / "run"
    mid_run: list[list[Path]] = []
    code, err = sigterm_mid_call(
        tmp_path,
        "picomaml.pretrain.checkpoint:save_pico",
        argv,
        after=1,
        before_signal=lambda: mid_run.append(leftovers(run)),
    )
    assert mid_run[0] == [run / "checkpoints" / "step_2.tmp"]
    assert code == 143, err
    assert "Traceback" not in err and err.splitlines()[-1] == "picomaml: terminated (SIGTERM)"
    assert (run / "checkpoints" / "latest").read_text() == "step_1\n" and not leftovers(run)
    assert not (run / ".picomaml.lock").exists()
    assert main([*argv, "--resume"]) == 0
    assert _steps(run) == [1, 2, 3] and not leftovers(run)

"""The Fabric loop on one CPU process: exact resume, NaN stop, run-dir guards, outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from picomaml.errors import PicomamlError
from picomaml.pretrain import inputs
from picomaml.pretrain.trainer import run_pretraining
from tests.fixtures import FIXTURE_DATA
from tests.pretrain.tiny import poison_ar_loss, small_corpus, tiny_config


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, fixture_data_root: Path) -> tuple[tuple[Path, Path], Path]:
    root = tmp_path_factory.mktemp("trainer-data")
    return small_corpus(fixture_data_root, root / "corpus"), root / "cache"


@pytest.fixture()
def fabric():
    from lightning.fabric import Fabric

    f = Fabric(accelerator="cpu", devices=1)
    f.launch()
    return f


def _tensors(step_dir: Path) -> dict[str, torch.Tensor]:
    out = load_file(str(step_dir / "model.safetensors"))
    head = step_dir / "head.safetensors"
    if head.exists():
        out.update({f"head.{k}": v for k, v in load_file(str(head)).items()})
    return out


def _records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def test_resume_is_bit_identical(corpus, fabric, tmp_path: Path) -> None:
    """Stop after step 2, resume, reach step 5: parameters torch.equal to one straight run."""
    over = ("training.max_steps=5", "checkpointing.every=2", "meta.rho=0.5")
    cfg = tiny_config(*corpus, *over)
    straight, split = tmp_path / "straight", tmp_path / "split"
    run_pretraining(cfg, straight, fabric=fabric, data_root=FIXTURE_DATA)
    run_pretraining(cfg, split, fabric=fabric, data_root=FIXTURE_DATA, stop_at_step=2)
    assert (split / "checkpoints" / "latest").read_text().strip() == "step_2"
    run_pretraining(cfg, split, fabric=fabric, data_root=FIXTURE_DATA, resume=True)

    a, b = _tensors(straight / "checkpoints" / "step_5"), _tensors(split / "checkpoints" / "step_5")
    assert a.keys() == b.keys() and any(k.startswith("head.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # The logged numbers agree too (timing aside), and both runs used both branches.
    drop = ("tokens_per_s",)
    ra = [{k: v for k, v in r.items() if k not in drop} for r in _records(straight, "train")]
    rb = [{k: v for k, v in r.items() if k not in drop} for r in _records(split, "train")]
    assert ra == rb and [r["step"] for r in ra] == [1, 2, 3, 4, 5]
    assert sum(r["ar_per_step"] for r in ra) > 0 and sum(r["meta_per_step"] for r in ra) > 0
    saved = yaml.safe_load((straight / "config.yaml").read_text())
    assert saved["meta"]["rho"] == 0.5 and saved["training"]["max_steps"] == 5


def test_same_seed_same_numbers_and_outputs(corpus, fabric, tmp_path: Path) -> None:
    over = (
        "training.max_steps=2",
        "dynamics.enabled=true",
        "dynamics.every=2",
        "dynamics.eval_batch_size=4",
    )
    cfg = tiny_config(*corpus, *over)
    run_pretraining(cfg, tmp_path / "a", fabric=fabric, data_root=FIXTURE_DATA)
    run_pretraining(cfg, tmp_path / "b", fabric=fabric, data_root=FIXTURE_DATA)
    a, b = (
        _tensors(tmp_path / "a" / "checkpoints" / "step_2"),
        _tensors(tmp_path / "b" / "checkpoints" / "step_2"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    train = _records(tmp_path / "a", "train")
    assert {"lr", "ar_loss", "meta_loss", "ar_per_step", "meta_per_step", "tokens", "tokens_per_s",
            "support_acc_before", "support_acc_after", "query_acc", "head_weight_mean",
            "head_weight_std", "head_grad_norm", "grad_norm"} <= set(train[0])  # fmt: skip
    assert train[-1]["ar_per_step"] + train[-1]["meta_per_step"] == 2  # accumulation steps
    (dyn,) = _records(tmp_path / "a", "dynamics")
    assert dyn["step"] == 2 and math.isfinite(dyn["val_perplexity"])
    assert len(dyn["per"]) == 6 and all(0 < v <= 1 for v in dyn["per"].values())
    ld = tmp_path / "a" / "checkpoints" / "step_2" / "learning_dynamics"
    assert sorted(p.name for p in ld.iterdir()) == sorted(
        f"{s}_{k}.pt" for s in ("train", "val") for k in ("activations", "gradients", "weights")
    )
    acts = torch.load(ld / "train_activations.pt", weights_only=True)
    assert acts["layers.1.swiglu.w_2"].shape == (4, 48)


def test_nonfinite_loss_stops_and_keeps_last_checkpoint(
    corpus, fabric, tmp_path, monkeypatch
) -> None:
    poison_ar_loss(monkeypatch, at_call=5, factor=float("inf"))  # micro-batch 1 of step 3
    cfg = tiny_config(*corpus, "meta.rho=0.0", "training.max_steps=4", "checkpointing.every=2")
    run = tmp_path / "nan"
    with pytest.raises(PicomamlError, match=r"non-finite ar loss at optimizer step 3.*step_2"):
        run_pretraining(cfg, run, fabric=fabric, data_root=FIXTURE_DATA)
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_2"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest", "step_2"]


def test_run_dir_guards(corpus, fabric, tmp_path) -> None:
    cfg = tiny_config(*corpus, "training.max_steps=2", "meta.rho=0.0")
    run = tmp_path / "run"
    run_pretraining(cfg, run, fabric=fabric, data_root=FIXTURE_DATA)
    with pytest.raises(PicomamlError, match="--resume"):
        run_pretraining(cfg, run, fabric=fabric, data_root=FIXTURE_DATA)
    other = tiny_config(*corpus, "training.max_steps=2", "meta.rho=0.0", "training.lr=0.5")
    with pytest.raises(PicomamlError, match=r"training.lr: 0.001 in the run, 0.5 now"):
        run_pretraining(other, run, fabric=fabric, data_root=FIXTURE_DATA, resume=True)
    # Resuming a finished run does nothing; resuming an empty dir starts fresh.
    run_pretraining(cfg, run, fabric=fabric, data_root=FIXTURE_DATA, resume=True)
    run_pretraining(cfg, tmp_path / "fresh", fabric=fabric, data_root=FIXTURE_DATA, resume=True)
    assert (tmp_path / "fresh" / "checkpoints" / "step_2").is_dir()


def test_per_step_branch_draw(corpus, fabric, tmp_path) -> None:
    """``meta.branch_draw: per_step``: all micro-batches of a step take the same branch."""
    cfg = tiny_config(*corpus, "meta.branch_draw=per_step", "training.max_steps=6")
    run_pretraining(cfg, tmp_path / "run", fabric=fabric, data_root=FIXTURE_DATA)
    counts = [(r["ar_per_step"], r["meta_per_step"]) for r in _records(tmp_path / "run", "train")]
    assert set(counts) == {(2.0, 0.0), (0.0, 2.0)}  # both kinds occur, never mixed


def test_hub_run_still_reads_the_local_valid_split(corpus, monkeypatch, fixture_data_root) -> None:
    """Streaming training data must not silently drop held-out perplexity."""
    import numpy as np

    import picomaml.data.corpus as corpus_mod

    class FakeStream:
        def __init__(self, name, seq_len, rank=0, world_size=1) -> None:
            self.seq_len = seq_len

        def next_rows(self, n: int) -> torch.Tensor:
            return torch.from_numpy(np.arange(n * (self.seq_len + 1)).reshape(n, -1) % 5000)

    monkeypatch.setattr(corpus_mod, "HubRowStream", FakeStream)
    cfg = tiny_config(*corpus, "data.kind=hub", "data.corpus=pico-lm/pretokenized-dolma")
    data = inputs.load_training_data(cfg, fixture_data_root, 0, 1)
    assert data.valid is not None and data.valid.rows.shape[1] == cfg.data.seq_len + 1
    assert data.train_probe.shape[0] == cfg.dynamics.eval_batch_size


def test_corpus_passes_and_note(corpus, fabric, tmp_path, capsys) -> None:
    cfg = tiny_config(*corpus)
    assert inputs.corpus_passes(cfg, 12) == pytest.approx(3 * 8 / 12)
    run_pretraining(
        tiny_config(*corpus, "training.max_steps=2"),
        tmp_path / "r",
        fabric=fabric,
        data_root=FIXTURE_DATA,
    )
    assert "passes over its corpus" not in capsys.readouterr().err
    many = tiny_config(
        *corpus, "training.max_steps=2", "data.max_train_tokens=99", "meta.enabled=false"
    )
    run_pretraining(many, tmp_path / "r2", fabric=fabric, data_root=FIXTURE_DATA)
    assert "5.3 passes over its corpus (3 rows of 33 tokens)" in capsys.readouterr().err


def test_control_backbone_does_not_depend_on_the_learner(corpus, fabric, tmp_path: Path):
    """``meta.loss_weight=0`` (the control of docs/pretraining.md) gives the same backbone
    whatever ``meta.learner``: one control run serves every learner's comparison, and only
    its logged episode statistics depend on the learner configured."""
    over = ("training.max_steps=4", "meta.rho=0.5", "meta.loss_weight=0")
    finals = {}
    for learner in ("query_only", "protonet"):
        cfg = tiny_config(*corpus, *over, f"meta.learner={learner}")
        run_pretraining(cfg, tmp_path / learner, fabric=fabric, data_root=FIXTURE_DATA)
        finals[learner] = _tensors(tmp_path / learner / "checkpoints" / "step_4")
    backbone = [k for k in finals["query_only"] if not k.startswith("head.")]
    assert all(torch.equal(finals["query_only"][k], finals["protonet"][k]) for k in backbone)
    weighted = tiny_config(*corpus, *over[:2], "meta.learner=protonet")
    run_pretraining(weighted, tmp_path / "w1", fabric=fabric, data_root=FIXTURE_DATA)
    trained = _tensors(tmp_path / "w1" / "checkpoints" / "step_4")
    assert any(not torch.equal(trained[k], finals["protonet"][k]) for k in backbone)


def test_init_from_branches_a_run_with_another_config(corpus, fabric, tmp_path: Path):
    """``--init-from``: the branch continues the other run's step count, weights and data
    position under its own config (here rho changed), and records where it came from."""
    base = tiny_config(*corpus, "training.max_steps=4", "checkpointing.every=2")
    run_pretraining(base, tmp_path / "base", fabric=fabric, data_root=FIXTURE_DATA)
    start = tmp_path / "base" / "checkpoints" / "step_2"
    meta_only = tiny_config(*corpus, "training.max_steps=4", "meta.rho=1.0")
    branch = tmp_path / "branch"
    run_pretraining(meta_only, branch, fabric=fabric, data_root=FIXTURE_DATA, init_from=start)
    train = _records(tmp_path / "branch", "train")
    assert [r["step"] for r in train] == [3, 4]
    assert all(r["ar_per_step"] == 0 for r in train)  # the branch's own rho
    recorded = json.loads((tmp_path / "branch" / "init_from.json").read_text())
    assert recorded == {"init_from": str(start)}
    a, b = _tensors(start), _tensors(tmp_path / "branch" / "checkpoints" / "step_4")
    assert any(not torch.equal(a[k], b[k]) for k in a)

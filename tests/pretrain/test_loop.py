"""The loop's device hygiene: autocast in episodes, one read-back per logging step, the
optimizer kernel, compiled blocks. (Resume and DDP equality: test_trainer, test_distributed.)"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from picomaml.model import PicoDecoder
from picomaml.pretrain import stats as stats_mod
from picomaml.pretrain import trainer
from picomaml.pretrain.config import load_pretrain_config
from picomaml.pretrain.optim import build_optimizer, load_optimizer_state
from picomaml.pretrain.stats import StatsAccumulator
from picomaml.pretrain.trainer import run_pretraining
from tests.fixtures import FIXTURE_DATA
from tests.pretrain.tiny import poison_ar_loss, small_corpus, tiny_config


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, fixture_data_root: Path) -> tuple[tuple[Path, Path], Path]:
    root = tmp_path_factory.mktemp("loop-data")
    return small_corpus(fixture_data_root, root / "corpus"), root / "cache"


def _fabric(precision: str = "32-true"):
    from lightning.fabric import Fabric

    f = Fabric(accelerator="cpu", devices=1, precision=precision)  # type: ignore[arg-type]
    f.launch()
    return f


def _records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "train"]


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    folder = run / "checkpoints" / f"step_{step}"
    out = load_file(str(folder / "model.safetensors"))
    out.update({f"head.{k}": v for k, v in load_file(str(folder / "head.safetensors")).items()})
    return out


def test_episodes_run_under_the_precision_autocast(corpus, tmp_path, monkeypatch) -> None:
    """On one device Fabric does not route ``hidden_states`` through its forward; the
    trainer must enter the precision's autocast itself (bf16-mixed: episodes in bf16)."""
    seen: list[tuple[bool, torch.dtype]] = []
    real = PicoDecoder.hidden_states

    def spy(self, ids):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return real(self, ids)

    monkeypatch.setattr(PicoDecoder, "hidden_states", spy)
    cfg = tiny_config(*corpus, "meta.rho=1.0", "training.max_steps=1", "training.warmup_steps=1")
    run_pretraining(cfg, tmp_path / "bf16", fabric=_fabric("bf16-mixed"), data_root=FIXTURE_DATA)
    assert len(seen) == 4  # 2 episodes x (support, query)
    assert seen == [(True, torch.bfloat16)] * 4
    (record,) = _records(tmp_path / "bf16")
    assert record["meta_per_step"] == 2 and math.isfinite(record["meta_loss"])


def test_one_read_back_per_logging_step_and_no_host_reads_between(
    corpus, tmp_path, monkeypatch
) -> None:
    """Statistics stay on the device between read-backs: no picomaml code reads a tensor on
    the host during the other steps, and the window's figures equal those logged per step."""
    src = str(Path(trainer.__file__).parents[1])
    between: list[str] = []
    state = {"read": True}
    real_step = trainer.Trainer.train_step

    def step_spy(self, read=True, ahead=False):
        state["read"] = read
        try:
            return real_step(self, read=read, ahead=ahead)
        finally:
            state["read"] = True

    def watch(name: str):
        real = getattr(torch.Tensor, name)

        def method(self, *args, **kwargs):
            caller = inspect.currentframe().f_back  # type: ignore[union-attr]
            if not state["read"] and caller.f_code.co_filename.startswith(src):
                between.append(f"{name} in {caller.f_code.co_name}")
            return real(self, *args, **kwargs)

        return method

    reads = []
    real_read = StatsAccumulator.read

    def read_spy(self, all_reduce):
        reads.append(1)
        return real_read(self, all_reduce)

    monkeypatch.setattr(stats_mod.StatsAccumulator, "read", read_spy)
    over = ("training.max_steps=6", "checkpointing.every=6", "meta.rho=0.5")
    run_pretraining(
        tiny_config(*corpus, *over), tmp_path / "every1", fabric=_fabric(), data_root=FIXTURE_DATA
    )
    monkeypatch.setattr(trainer.Trainer, "train_step", step_spy)
    for name in ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, watch(name))
    reads.clear()
    run_pretraining(
        tiny_config(*corpus, *over, "logging.every=3"),
        tmp_path / "every3",
        fabric=_fabric(),
        data_root=FIXTURE_DATA,
    )
    monkeypatch.undo()
    assert between == []
    assert len(reads) == 2  # steps 3 and 6

    a, b = _weights(tmp_path / "every1", 6), _weights(tmp_path / "every3", 6)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the cadence changes no number
    per_step, windows = _records(tmp_path / "every1"), _records(tmp_path / "every3")
    assert [r["step"] for r in windows] == [3, 6]
    for window, steps in zip(windows, (per_step[:3], per_step[3:]), strict=True):
        n_ar = sum(r["ar_per_step"] for r in steps)
        n_meta = sum(r["meta_per_step"] for r in steps)
        assert n_ar > 0 and n_meta > 0  # both branches ran in every window
        assert window["ar_per_step"] == pytest.approx(n_ar / 3)
        ar = sum(r["ar_loss"] * r["ar_per_step"] for r in steps if r["ar_per_step"]) / n_ar
        meta = sum(r["meta_loss"] * r["meta_per_step"] for r in steps if r["meta_per_step"])
        assert window["ar_loss"] == pytest.approx(ar, rel=1e-12)
        assert window["meta_loss"] == pytest.approx(meta / n_meta, rel=1e-12)
        assert window["grad_norm"] == pytest.approx(sum(r["grad_norm"] for r in steps) / 3)
        assert window["tokens"] == steps[-1]["tokens"]


def test_a_bad_step_between_read_backs_is_named(corpus, tmp_path, monkeypatch) -> None:
    """A non-finite loss at step 2 is found at the read-back of step 3, named as step 2,
    and nothing after the last good checkpoint is written."""
    poison_ar_loss(monkeypatch, at_call=3, factor=float("nan"))  # micro-batch 1 of step 2
    # Read-backs at steps 3 (logging), 4 (checkpoint) and 6; step 2 is not one.
    over = ("meta.rho=0.0", "training.max_steps=6", "logging.every=3", "checkpointing.every=4")
    cfg = tiny_config(*corpus, *over)
    run = tmp_path / "nan"
    with pytest.raises(trainer.PicomamlError) as err:
        run_pretraining(cfg, run, fabric=_fabric(), data_root=FIXTURE_DATA)
    message = str(err.value)
    assert "non-finite ar loss at optimizer step 2 (read back at step 3" in message
    assert "step 2 updated the parameters in memory, nothing of it was saved" in message
    assert "no checkpoint was written yet" in message
    assert not (run / "checkpoints").exists() or not any((run / "checkpoints").iterdir())
    assert not (run / "metrics.jsonl").exists() or _records(run) == []


def test_accumulator_remembers_the_first_bad_step() -> None:
    acc = StatsAccumulator(torch.device("cpu"))
    for step, bad in ((1, 0.0), (2, 1.0), (3, 0.0), (4, 1.0)):
        acc.add("bad_meta", bad)
        acc.add("n_meta", 1)
        acc.end_step(step)
    assert acc.steps == 4 and acc.first_bad_step(lambda t: t) == 2
    stats = acc.read(lambda t: t)
    assert stats.bad_meta == 2 and stats.n_meta == 4
    acc.reset()
    acc.add("bad_grad", 0.0)
    acc.end_step(5)
    assert acc.steps == 1 and acc.first_bad_step(lambda t: t) is None


def test_optimizer_state_keeps_this_optimizer_kernel() -> None:
    """A fused run's checkpoint resumes on the default kernel and back (CPU has both)."""
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 4))

    def stepped(fused: bool | None) -> torch.optim.AdamW:
        opt = torch.optim.AdamW([w], lr=1e-2, fused=fused)
        w.grad = torch.ones_like(w)
        opt.step()
        return opt

    for saved, now in ((True, None), (None, True)):
        state = stepped(saved).state_dict()
        fresh = torch.optim.AdamW([w], lr=1e-2, fused=now)
        load_optimizer_state(fresh, state)
        assert fresh.param_groups[0]["fused"] is now and fresh.param_groups[0]["foreach"] is None
        assert float(fresh.state[w]["step"]) == 1 and fresh.state[w]["step"].device.type == "cpu"
        fresh.step()  # runs on its own kernel
        assert float(fresh.state[w]["step"]) == 2
    cpu = build_optimizer(torch.nn.Linear(2, 2), None, load_pretrain_config(None))
    assert cpu.defaults["fused"] is None  # CPU parameters: the default kernel


def test_trainer_compiles_the_blocks_when_asked(corpus, tmp_path, capsys) -> None:
    """Compiling is lazy, so building the trainer shows the wiring without a compile."""
    fabric = _fabric()
    eager = trainer.Trainer(
        fabric, tiny_config(*corpus), tmp_path / "a", data_root=FIXTURE_DATA, resume=False
    )
    assert not eager.compiled and "compiled" not in capsys.readouterr().err
    cfg = tiny_config(*corpus, "runtime.compile=true")
    comp = trainer.Trainer(fabric, cfg, tmp_path / "b", data_root=FIXTURE_DATA, resume=False)
    assert comp.compiled and "decoder blocks are compiled" in capsys.readouterr().err
    assert all(getattr(b, "_compiled_call_impl", None) is not None for b in comp.raw_model.layers)
    assert list(comp.raw_model.state_dict()) == list(eager.raw_model.state_dict())


@pytest.mark.slow
def test_compiled_trainer_matches_eager(corpus, tmp_path) -> None:
    """``runtime.compile=true``: the same losses and parameters after 3 steps as eager (both
    branches), and checkpoint names without ``_orig_mod.``. Slow: cold inductor compiles."""
    over = ("training.max_steps=3", "meta.rho=0.5", "training.eps=1.0e-6")
    run_pretraining(
        tiny_config(*corpus, *over), tmp_path / "eager", fabric=_fabric(), data_root=FIXTURE_DATA
    )
    compiled = tiny_config(*corpus, *over, "runtime.compile=true")
    run_pretraining(compiled, tmp_path / "compiled", fabric=_fabric(), data_root=FIXTURE_DATA)
    eager, comp = _records(tmp_path / "eager"), _records(tmp_path / "compiled")
    assert sum(r["ar_per_step"] for r in eager) > 0 and sum(r["meta_per_step"] for r in eager) > 0
    for e, c in zip(eager, comp, strict=True):
        for key in ("ar_loss", "meta_loss"):
            if e[key] is not None:
                assert c[key] == pytest.approx(e[key], rel=1e-5), (e["step"], key)
    a, b = _weights(tmp_path / "eager", 3), _weights(tmp_path / "compiled", 3)
    assert a.keys() == b.keys() and not any("_orig_mod" in k for k in b)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)

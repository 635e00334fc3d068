"""Checkpoint folders: round trip, atomic publication, latest pointer, pruning, RNG states."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from picomaml.errors import PicomamlError
from picomaml.layout import PICO_HF_FILES
from picomaml.model import PicoConfig, PicoDecoder
from picomaml.pretrain import checkpoint as ckpt
from picomaml.pretrain.meta_head import MetaHead


def _model() -> PicoDecoder:
    torch.manual_seed(1)
    return PicoDecoder(
        PicoConfig(d_model=16, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=32, max_seq_len=8)
    )


def test_round_trip_and_pointer(tmp_path) -> None:
    model, head = _model(), MetaHead(16, hidden=8, layers=2)
    rng = np.random.default_rng(5)
    state = {"optimizer": {"x": torch.arange(3)}, "gen": ckpt.generator_state(rng), "tokens": 7}
    seen = []
    folder = ckpt.save_checkpoint(
        tmp_path,
        4,
        model,
        head,
        state,
        extra=lambda d: seen.append(sorted(p.name for p in d.iterdir())),
    )
    assert folder == tmp_path / "step_4"
    assert (tmp_path / "latest").read_text().strip() == "step_4"
    files = ["config.json", "head.safetensors", "model.safetensors", "trainer_state.pt"]
    assert seen == [sorted([*files, *PICO_HF_FILES])]  # HF files: picomaml.model.hf_files
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    loaded, head_state, got = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert all(torch.equal(v, head_state[k]) for k, v in head.state_dict().items())
    assert (
        got["step"] == 4
        and got["tokens"] == 7
        and torch.equal(got["optimizer"]["x"], torch.arange(3))
    )
    fresh = np.random.default_rng(0)
    ckpt.set_generator_state(fresh, got["gen"])
    assert fresh.random() == rng.random()


def test_replace_prune_and_bad_pointer(tmp_path) -> None:
    model = _model()
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, step, model, None, {}, keep_last=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step_2", "step_3"]
    assert not (tmp_path / "step_3" / "head.safetensors").exists()
    # A stale step_2 (from before a resume) is replaced, and latest moves back to it.
    torch.nn.init.zeros_(model.output_norm.weight)
    ckpt.save_checkpoint(tmp_path, 2, model, None, {"tag": "new"})
    _, _, state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))
    assert state["tag"] == "new" and state["step"] == 2
    assert ckpt.latest_checkpoint(tmp_path / "nothing") is None
    (tmp_path / "latest").write_text("step_9\n")
    with pytest.raises(PicomamlError, match="step_9"):
        ckpt.latest_checkpoint(tmp_path)
    with pytest.raises(PicomamlError, match="not a pretraining checkpoint"):
        ckpt.load_checkpoint(tmp_path / "nothing")


def test_keep_state_last_keeps_weights_drops_old_state(tmp_path) -> None:
    """Old steps stay loadable as backbones (for the sweep) but lose their optimizer state."""
    model = _model()
    for step in (1, 2, 3):
        ckpt.save_checkpoint(tmp_path, step, model, None, {"x": step}, keep_state_last=1)
    for step in (1, 2, 3):
        assert (tmp_path / f"step_{step}" / "model.safetensors").is_file()
    states = [(tmp_path / f"step_{s}" / ckpt.STATE_FILE).is_file() for s in (1, 2, 3)]
    assert states == [False, False, True]
    _, _, state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))
    assert state["x"] == 3


def test_interrupted_write_is_never_latest(tmp_path) -> None:
    model = _model()
    ckpt.save_checkpoint(tmp_path, 1, model, None, {})

    def crash(_folder) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path, 2, model, None, {}, extra=crash)
    assert ckpt.latest_checkpoint(tmp_path) == tmp_path / "step_1"
    assert not (tmp_path / "step_2").exists()
    ckpt.save_checkpoint(tmp_path, 2, model, None, {})  # the leftover .tmp is cleared
    assert ckpt.latest_checkpoint(tmp_path) == tmp_path / "step_2"


def test_rng_capture_restore() -> None:
    state = ckpt.capture_rng()
    expected = (random.random(), np.random.rand(), torch.rand(2))
    ckpt.restore_rng(state)
    assert random.random() == expected[0]
    assert np.random.rand() == expected[1]
    assert torch.equal(torch.rand(2), expected[2])

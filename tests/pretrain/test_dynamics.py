"""Learning dynamics against hand values: PER, spectra, perplexity, pico-train states."""

from __future__ import annotations

import math

import pytest
import torch

from picomaml.model import PicoConfig, PicoDecoder
from picomaml.pretrain.dynamics import (
    extract_states,
    perplexity,
    proportional_effective_rank,
    save_states,
    singular_values,
    spectra,
)


def _tiny() -> PicoDecoder:
    torch.manual_seed(0)
    return PicoDecoder(
        PicoConfig(d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=64, max_seq_len=8)
    )


def test_per_hand_values() -> None:
    assert proportional_effective_rank(singular_values(torch.eye(5))) == pytest.approx(1.0)
    rank1 = torch.outer(torch.arange(1.0, 5.0), torch.arange(1.0, 7.0))
    assert proportional_effective_rank(singular_values(rank1)) == pytest.approx(1 / 4)
    # s = (3, 1): p = (3/4, 1/4), H = -(3/4 ln 3/4 + 1/4 ln 1/4)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    per = proportional_effective_rank(torch.tensor([3.0, 1.0]))
    assert per == pytest.approx(math.exp(h) / 2)
    # 0 log 0 = 0: a zero singular value adds length but no entropy
    assert proportional_effective_rank(torch.tensor([2.0, 0.0, 0.0])) == pytest.approx(1 / 3)
    assert proportional_effective_rank(torch.zeros(3)) == 0.0


def test_singular_values_and_spectra_names() -> None:
    w = torch.diag(torch.tensor([1.0, 3.0, 2.0]))
    assert singular_values(w).tolist() == pytest.approx([3.0, 2.0, 1.0])
    with pytest.raises(ValueError):
        singular_values(torch.zeros(2, 2, 2))
    spec = spectra(_tiny())
    assert sorted(spec) == sorted(
        f"layers.{i}.{m}"
        for i in range(2)
        for m in ("attention.v_proj", "attention.o_proj", "swiglu.w_2")
    )
    assert spec["layers.0.attention.v_proj"].shape == (8,)  # v_proj: 16 -> 2 heads x 4


def test_perplexity_of_uniform_model_is_vocab_size() -> None:
    model = _tiny()
    torch.nn.init.zeros_(model.de_embedding_proj.weight)  # all logits 0 -> uniform
    rows = torch.randint(0, 64, (3, 7))
    assert perplexity(model, [rows[:2], rows[2:]]) == pytest.approx(64.0, rel=1e-5)
    assert model.training  # mode restored


def test_extract_states_layout_and_values(tmp_path) -> None:
    model = _tiny()
    rows = torch.randint(0, 64, (3, 7))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    states = extract_states(model, rows)
    assert set(states) == {"activations", "weights", "gradients"}
    name = "layers.0.attention.v_proj"
    assert set(states["activations"]) == set(states["weights"]) == set(states["gradients"])
    # activation at the last input position, computed by hand
    x = model.layers[0].attention_norm(model.embedding_proj(rows[:, :-1]))
    expected = model.layers[0].attention.v_proj(x)[:, -1]
    torch.testing.assert_close(states["activations"][name], expected.detach())
    # gradient of the mean LM loss, computed by hand; the caller's model is untouched
    logits = model(rows[:, :-1])
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 64), rows[:, 1:].reshape(-1))
    (grad,) = torch.autograd.grad(loss, [model.layers[1].swiglu.w_2.weight])
    torch.testing.assert_close(states["gradients"]["layers.1.swiglu.w_2"], grad)
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    save_states(tmp_path / "ld", "val", states)
    loaded = torch.load(tmp_path / "ld" / "val_weights.pt", weights_only=True)
    assert torch.equal(loaded[name], model.layers[0].attention.v_proj.weight)
    assert sorted(p.name for p in (tmp_path / "ld").iterdir()) == [
        "val_activations.pt",
        "val_gradients.pt",
        "val_weights.pt",
    ]

"""The Pico decoder: exact sizes, shapes, causality, RoPE, GQA and checkpoint round trips."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from picomaml.cli.main import main
from picomaml.errors import PicomamlError
from picomaml.model import (
    PicoConfig,
    PicoDecoder,
    config_for,
    count_parameters,
    load_pico,
    save_pico,
)
from picomaml.model.pico import apply_rope, rope_tables

SMALL = PicoConfig(d_model=48, n_layers=2, vocab_size=512, max_seq_len=64)


def _model(config: PicoConfig = SMALL, seed: int = 0) -> PicoDecoder:
    torch.manual_seed(seed)
    return PicoDecoder(config).eval()


@pytest.mark.parametrize(
    "size,total",
    [("tiny", 11_282_784), ("small", 64_595_328), ("medium", 181_095_168), ("large", 569_808_384)],
)
def test_parameter_counts_match_the_paper(size: str, total: int) -> None:
    counts = count_parameters(config_for(size))
    assert counts["total"] == total
    assert counts["embedding"] + counts["non_embedding"] == total


@pytest.mark.parametrize(
    "config",
    [
        config_for("tiny"),
        SMALL,
        PicoConfig(
            d_model=40, n_layers=3, n_heads=4, n_kv_heads=2, vocab_size=77, activation_hidden_dim=56
        ),
    ],
)
def test_analytic_count_equals_allocated(config: PicoConfig) -> None:
    assert count_parameters(config)["total"] == sum(
        p.numel() for p in PicoDecoder(config).parameters()
    )


def test_parameter_names_follow_pico_train() -> None:
    names = set(_model().state_dict())
    for name in [
        "embedding_proj.weight",
        "layers.0.attention.q_proj.weight",
        "layers.1.attention.k_proj.weight",
        "layers.0.attention.v_proj.weight",
        "layers.0.attention.o_proj.weight",
        "layers.0.attention_norm.weight",
        "layers.0.swiglu.w_0.weight",
        "layers.0.swiglu.w_1.weight",
        "layers.0.swiglu.w_2.weight",
        "layers.0.swiglu_norm.weight",
        "output_norm.weight",
        "de_embedding_proj.weight",
    ]:
        assert name in names
    assert not any("bias" in n for n in names)


def test_shapes_and_hidden_states() -> None:
    model = _model()
    ids = torch.randint(0, 512, (3, 10))
    logits, hidden = model(ids, return_hidden=True)
    assert logits.shape == (3, 10, 512) and hidden.shape == (3, 10, 48)
    assert torch.equal(model.hidden_states(ids), hidden)
    assert torch.allclose(logits, model.de_embedding_proj(hidden))


def test_causal_later_tokens_do_not_change_earlier_logits() -> None:
    model = _model()
    ids = torch.randint(0, 512, (1, 12))
    changed = ids.clone()
    changed[0, 7:] = (changed[0, 7:] + 1) % 512
    a, b = model(ids), model(changed)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-6)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_rope_depends_only_on_relative_position() -> None:
    cos, sin = rope_tables(head_dim=8, max_seq_len=64, theta=10000.0)
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def dot(m: int, n: int) -> float:
        qm = apply_rope(q, cos[m : m + 1], sin[m : m + 1])
        kn = apply_rope(k, cos[n : n + 1], sin[n : n + 1])
        return float((qm * kn).sum())

    assert dot(3, 1) == pytest.approx(dot(23, 21), abs=1e-5)
    assert dot(10, 4) == pytest.approx(dot(40, 34), abs=1e-5)
    assert dot(3, 1) != pytest.approx(dot(3, 2), abs=1e-3)


def test_rope_rotates_adjacent_pairs() -> None:
    """Elements (2i, 2i+1) form one complex number rotated by position * theta^(-2i/d)."""
    cos, sin = rope_tables(head_dim=4, max_seq_len=8, theta=100.0)
    x = torch.tensor([1.0, 0.0, 0.0, 1.0]).view(1, 1, 1, 4)
    out = apply_rope(x, cos[5:6], sin[5:6]).flatten()
    a0, a1 = 5.0, 5.0 * 100.0 ** (-2 / 4)
    expected = [math.cos(a0), math.sin(a0), -math.sin(a1), math.cos(a1)]
    assert out.tolist() == pytest.approx(expected, abs=1e-6)


def _reference_forward(model: PicoDecoder, ids: torch.Tensor) -> torch.Tensor:
    """The same math written out independently: explicit heads, complex RoPE, masked softmax."""
    cfg = model.config
    T, Dh, rep = ids.shape[1], cfg.head_dim, cfg.n_heads // cfg.n_kv_heads
    pos = torch.arange(T).float()
    freqs = 1.0 / cfg.rope_theta ** (torch.arange(0, Dh, 2).float() / Dh)
    rot = torch.polar(torch.ones(T, Dh // 2), torch.outer(pos, freqs))

    def rms(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + cfg.norm_eps) * w

    def rope(x: torch.Tensor) -> torch.Tensor:  # x [T, Dh]
        c = torch.view_as_complex(x.reshape(T, Dh // 2, 2).contiguous()) * rot
        return torch.view_as_real(c).reshape(T, Dh)

    x = model.embedding_proj.weight[ids[0]]
    causal = torch.ones(T, T).tril().bool()
    for layer in model.layers:
        att = layer.attention
        h = rms(x, layer.attention_norm.weight)
        q, k, v = h @ att.q_proj.weight.T, h @ att.k_proj.weight.T, h @ att.v_proj.weight.T
        heads = []
        for i in range(cfg.n_heads):
            j = i // rep
            qi, kj = rope(q[:, i * Dh : (i + 1) * Dh]), rope(k[:, j * Dh : (j + 1) * Dh])
            scores = (qi @ kj.T / math.sqrt(Dh)).masked_fill(~causal, float("-inf"))
            heads.append(scores.softmax(-1) @ v[:, j * Dh : (j + 1) * Dh])
        x = x + torch.cat(heads, -1) @ att.o_proj.weight.T
        g = rms(x, layer.swiglu_norm.weight)
        sw = layer.swiglu
        x = x + (F.silu(g @ sw.w_0.weight.T) * (g @ sw.w_1.weight.T)) @ sw.w_2.weight.T
    return rms(x, model.output_norm.weight) @ model.de_embedding_proj.weight.T


def test_matches_independent_reference_implementation() -> None:
    model = _model()
    with torch.no_grad():
        for p in model.parameters():  # non-trivial norm weights too
            p.add_(0.05 * torch.randn_like(p))
    ids = torch.randint(0, 512, (1, 9))
    with torch.no_grad():
        assert torch.allclose(model(ids)[0], _reference_forward(model, ids), atol=1e-4)


def test_attention_equals_sdpa_native_gqa() -> None:
    """pico-train calls SDPA with enable_gqa on CUDA: query head h reads kv head h // rep."""
    model = _model()
    att, cfg = model.layers[0].attention, model.config
    x = torch.randn(2, 9, 48)
    cos, sin = model.rope_cos[:9], model.rope_sin[:9]
    q = apply_rope(att.q_proj(x).view(2, 9, cfg.n_heads, cfg.head_dim), cos, sin)
    k = apply_rope(att.k_proj(x).view(2, 9, cfg.n_kv_heads, cfg.head_dim), cos, sin)
    v = att.v_proj(x).view(2, 9, cfg.n_kv_heads, cfg.head_dim)
    native = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, enable_gqa=True
    )
    expected = att.o_proj(native.transpose(1, 2).reshape(2, 9, 48))
    with torch.no_grad():
        assert torch.allclose(att(x, cos, sin), expected, atol=1e-6)


def test_bf16_cast_keeps_rope_tables_in_float32() -> None:
    model = _model()
    ids = torch.randint(0, 512, (2, 64))
    with torch.no_grad():
        full = model(ids)
        model.to(torch.bfloat16)
        cos, sin = rope_tables(SMALL.head_dim, SMALL.max_seq_len, SMALL.rope_theta)
        assert model.embedding_proj.weight.dtype == torch.bfloat16
        assert torch.equal(model.rope_cos, cos) and torch.equal(model.rope_sin, sin)
        assert "rope_cos" not in model.state_dict()
        assert (model(ids) - full).abs().max() < 0.02


def test_rmsnorm_runs_in_float32_for_bf16_input() -> None:
    model = _model()
    norm = model.output_norm
    x = (torch.randn(2, 5, 48) * 300).to(torch.bfloat16)
    out = norm(x)
    xf = x.float()
    expected = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(torch.bfloat16)
    assert torch.equal(out, expected * norm.weight)  # rounded to bf16 before the weight
    assert not torch.equal(out, (expected.float() * 1.0001) * norm.weight)


def test_save_load_roundtrip(tmp_path: Path) -> None:
    model = _model()
    save_pico(model, tmp_path / "ckpt")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        assert "pico_decoder.layers.0.attention.q_proj.weight" in set(f.keys())
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["model_type"] == "pico_decoder" and meta["attention_n_kv_heads"] == 4
    loaded = load_pico(tmp_path / "ckpt")
    ids = torch.randint(0, 512, (2, 7))
    assert torch.equal(loaded(ids), model(ids))


def test_load_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(PicomamlError, match="config.json"):
        load_pico(tmp_path)
    save_pico(_model(), tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["d_model"] = 96
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(PicomamlError, match="shape"):
        load_pico(tmp_path / "m")
    with pytest.raises(PicomamlError, match="valid sizes"):
        config_for("huge")
    with pytest.raises(PicomamlError, match="divisible"):
        PicoConfig(d_model=50)
    with pytest.raises(PicomamlError, match="window"):
        _model()(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(PicomamlError, match="batch, tokens"):
        _model()(torch.zeros(5, dtype=torch.long))


def test_two_sizes_live_in_one_process() -> None:
    a, b = _model(), _model(PicoConfig(d_model=24, n_layers=1, vocab_size=512, max_seq_len=16))
    ids = torch.randint(0, 512, (1, 16))
    before = a(ids)
    assert b(ids).shape == (1, 16, 512)
    assert torch.equal(a(ids), before)


def test_loss_falls_on_a_repeated_batch() -> None:
    torch.manual_seed(0)
    model = PicoDecoder(SMALL).train()
    rows = torch.randint(0, 512, (4, 17))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        logits = model(rows[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 512), rows[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_model_info_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["large"]["parameters"]["total"] == 569_808_384
    assert main(["model", "info", "--size", "tiny"]) == 0
    assert "11,282,784" in capsys.readouterr().out

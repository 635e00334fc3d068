"""The Pico decoder: a LLaMA-style causal transformer, in one file.

Parameter names and arithmetic follow pico-train's ``PicoDecoder`` so that published
Pico and Pico-MAML checkpoints load here and give the same logits:

    h   = x + attention(attention_norm(x))        # grouped-query attention with RoPE
    out = h + swiglu(swiglu_norm(h))              # w_2(silu(w_0 x) * w_1 x)

Shapes: B batch, T sequence, d model width, H query heads, Hkv key/value heads,
Dh = d / H head width, V vocabulary (50,304, the OLMo tokenizer padded).
Unlike pico-train, RoPE tables are per-module buffers (no class-level cache), so
models of different sizes can live in one process.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from picomaml.config import TIERS
from picomaml.errors import PicomamlError
from picomaml.model.loss import linear_cross_entropy

HF_PREFIX = "pico_decoder."
# Before pico-train commit 5a81476 (March 2025) the same architecture was called "pico":
# config.json said model_type "pico" and tensors were named "pico.<name>". The math is
# identical, so such checkpoints (e.g. the pico-lm/pico-decoder-* training branches) load too.
MODEL_TYPES = ("pico_decoder", "pico")
WEIGHT_PREFIXES = (HF_PREFIX, "pico.")


@dataclass(frozen=True)
class PicoConfig:
    """Architecture hyper-parameters; the four tiers differ only in ``d_model``."""

    d_model: int = 96
    n_layers: int = 12
    n_heads: int = 12
    n_kv_heads: int = 4
    vocab_size: int = 50304
    max_seq_len: int = 2048
    norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    activation_hidden_dim: int | None = None

    def __post_init__(self) -> None:
        check_config_fields(dataclasses.asdict(self))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def hidden_dim(self) -> int:
        """SwiGLU width: 4 d unless set explicitly."""
        return self.activation_hidden_dim or 4 * self.d_model


SIZE_FIELDS = (
    "d_model",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "vocab_size",
    "max_seq_len",
    "activation_hidden_dim",
)
POSITIVE_REAL_FIELDS = ("norm_eps", "rope_theta")
#: Longest window a config may ask for: the RoPE tables (max_seq_len x head width) are built
#: with the model, whatever the weights hold, so a huge value in config.json would allocate
#: gigabytes before anything else is checked. 64 times the paper's 2,048.
MAX_SEQ_LEN = 1 << 17


def check_config_fields(values: Mapping[str, Any], names: Mapping[str, str] | None = None) -> None:
    """Raise :class:`PicomamlError` naming the first field a Pico model cannot be built from.

    Checked before any tensor exists, so a bad ``config.json`` is one clear line instead of
    a ZeroDivisionError or a negative-size tensor deep in the constructor. ``names`` maps a
    field to the name its source uses (``n_heads`` -> ``attention_n_heads`` in config.json).
    ``activation_hidden_dim`` may be None (4 d).
    """
    names = names or {}

    def name(field: str) -> str:
        return names.get(field, field)

    for field in SIZE_FIELDS:
        value = values.get(field)
        if value is None and field == "activation_hidden_dim":
            continue
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise PicomamlError(f"{name(field)} must be a positive integer, got {value!r}")
    for field in POSITIVE_REAL_FIELDS:
        value = values.get(field)
        if (
            not isinstance(value, numbers.Real)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise PicomamlError(f"{name(field)} must be a positive finite number, got {value!r}")
    if values["max_seq_len"] > MAX_SEQ_LEN:
        raise PicomamlError(
            f"{name('max_seq_len')} must be at most {MAX_SEQ_LEN:,}, got {values['max_seq_len']}"
        )
    d, heads, kv = (int(values[f]) for f in ("d_model", "n_heads", "n_kv_heads"))
    if d % heads:
        raise PicomamlError(
            f"d_model={d} is not divisible by {name('n_heads')}={heads} "
            "(each attention head gets d_model / heads dimensions)"
        )
    if heads % kv:
        raise PicomamlError(
            f"{name('n_heads')}={heads} is not divisible by {name('n_kv_heads')}={kv} "
            "(each key/value head serves the same number of query heads)"
        )
    if (d // heads) % 2:
        raise PicomamlError(
            f"head width d_model / {name('n_heads')} = {d // heads} must be even: "
            "RoPE rotates pairs of dimensions"
        )


def config_for(size: str, **overrides: object) -> PicoConfig:
    """The configuration of a named tier, optionally with some fields (``d_model`` too) changed."""
    if size not in TIERS:
        raise PicomamlError(f"unknown model size {size!r}; valid sizes: {', '.join(TIERS)}")
    fields = {"d_model": TIERS[size], **overrides}
    return PicoConfig(**fields)  # type: ignore[arg-type]


def count_parameters(config: PicoConfig) -> dict[str, int]:
    """Exact parameter counts computed from the config, without allocating the model.

    "embedding" counts both the input embedding and the (untied) output projection.
    """
    d, kv = config.d_model, config.n_kv_heads * config.head_dim
    attention = d * d + 2 * d * kv + d * d  # q, k, v, o
    swiglu = 3 * d * config.hidden_dim  # w_0, w_1, w_2
    per_layer = attention + swiglu + 2 * d  # + attention_norm, swiglu_norm
    embedding = 2 * config.vocab_size * d
    non_embedding = config.n_layers * per_layer + d  # + output_norm
    return {
        "total": embedding + non_embedding,
        "embedding": embedding,
        "non_embedding": non_embedding,
    }


class RMSNorm(nn.Module):
    """RMS normalisation in float32, cast back to the input dtype, then scaled (as pico-train)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rope_tables(
    head_dim: int, max_seq_len: int, theta: float, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 cos and sin [max_seq_len, head_dim/2] of angle position * theta^(-2i/head_dim)."""
    exponents = torch.arange(0, head_dim, 2, device=device).float() / head_dim  # [Dh/2]
    inv_freq = 1.0 / (theta**exponents)  # [Dh/2]
    positions = torch.arange(max_seq_len, device=device).float()  # [T]
    angles = torch.outer(positions, inv_freq)  # [T, Dh/2]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs (2i, 2i+1) of x [B, T, heads, Dh] as complex numbers, in float32."""
    xf = x.float().unflatten(-1, (-1, 2))  # [B, T, heads, Dh/2, 2]
    real, imag = xf[..., 0], xf[..., 1]
    cos, sin = cos[:, None, :], sin[:, None, :]  # [T, 1, Dh/2], broadcast over heads
    rotated = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)


class Attention(nn.Module):
    """Causal grouped-query self-attention: query head h reads key/value head h // (H / Hkv)."""

    def __init__(self, config: PicoConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = (
            config.n_heads,
            config.n_kv_heads,
            config.head_dim,
        )
        kv_width = config.n_kv_heads * config.head_dim
        self.q_proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.k_proj = nn.Linear(config.d_model, kv_width, bias=False)
        self.v_proj = nn.Linear(config.d_model, kv_width, bias=False)
        self.o_proj = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim)  # [B, T, H, Dh]
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim)  # [B, T, Hkv, Dh]
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim)  # [B, T, Hkv, Dh]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = self.n_heads // self.n_kv_heads
        if rep > 1:  # kv head j serves query heads j*rep .. j*rep+rep-1 (SDPA enable_gqa)
            k = k.repeat_interleave(rep, dim=2)  # [B, T, H, Dh]
            v = v.repeat_interleave(rep, dim=2)  # [B, T, H, Dh]
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )  # [B, H, T, Dh]
        return self.o_proj(out.transpose(1, 2).reshape(B, T, -1))  # [B, T, d]


class SwiGLU(nn.Module):
    """Gated feed-forward ``w_2(silu(w_0 x) * w_1 x)`` of width 4 d."""

    def __init__(self, config: PicoConfig) -> None:
        super().__init__()
        self.w_0 = nn.Linear(config.d_model, config.hidden_dim, bias=False)
        self.w_1 = nn.Linear(config.d_model, config.hidden_dim, bias=False)
        self.w_2 = nn.Linear(config.hidden_dim, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = F.silu(self.w_0(x))  # [B, T, 4d]
        return self.w_2(gate * self.w_1(x))  # [B, T, d]


class Block(nn.Module):
    """Pre-norm residual block: attention then SwiGLU."""

    def __init__(self, config: PicoConfig) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attention = Attention(config)
        self.swiglu_norm = RMSNorm(config.d_model, config.norm_eps)
        self.swiglu = SwiGLU(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), cos, sin)  # [B, T, d]
        return h + self.swiglu(self.swiglu_norm(h))  # [B, T, d]


class PicoDecoder(nn.Module):
    """Embedding -> 12 blocks -> RMSNorm -> untied vocabulary projection.

    Causal attention makes right padding harmless: callers right-pad a batch and read
    only the positions they need, so no attention mask is taken.
    """

    def __init__(self, config: PicoConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding_proj = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.output_norm = RMSNorm(config.d_model, config.norm_eps)
        self.de_embedding_proj = nn.Linear(config.d_model, config.vocab_size, bias=False)
        cos, sin = rope_tables(config.head_dim, config.max_seq_len, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)  # [max_seq_len, Dh/2]
        self.register_buffer("rope_sin", sin, persistent=False)  # [max_seq_len, Dh/2]
        self.reset_parameters()

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        """Follow device moves but keep the RoPE tables in float32.

        ``model.to(torch.bfloat16)`` (e.g. Fabric's ``bf16-true``) would otherwise round
        cos/sin to 8 bits of mantissa, which moves logits visibly; pico-train rotates in
        float32 from a complex64 table, so we rebuild the float32 tables on the new
        device instead.
        """
        super()._apply(fn, recurse)
        if self.rope_cos.dtype != torch.float32:
            cos, sin = rope_tables(
                self.config.head_dim,
                self.config.max_seq_len,
                self.config.rope_theta,
                device=self.rope_cos.device,
            )
            self.rope_cos, self.rope_sin = cos, sin
        return self

    def reset_parameters(self) -> None:
        """GPT-2-style init: N(0, 0.02) for embeddings and projections, ones for norms.

        Residual output projections (o_proj, w_2) are scaled by 1/sqrt(2 L) so the
        residual stream's variance does not grow with depth. (pico-train keeps PyTorch's
        default init; this only matters when training from scratch, never for loading.)
        Seeded by the caller: ``torch.manual_seed`` before construction.
        """
        std = 0.02
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(p)
            elif name.endswith(("o_proj.weight", "w_2.weight")):
                nn.init.normal_(p, std=std / math.sqrt(2 * self.config.n_layers))
            else:
                nn.init.normal_(p, std=std)

    def hidden_states(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Final normed hidden states [B, T, d], skipping the vocabulary projection.

        Token ids are not range-checked up front (that would force a device sync per call):
        on CPU an id >= vocab_size becomes a :class:`PicomamlError`; callers that may run on
        CUDA check the tokenizer once with :func:`check_vocab`.
        """
        if input_ids.dim() != 2:
            raise PicomamlError(
                f"input_ids must be [batch, tokens], got shape {tuple(input_ids.shape)}"
            )
        seq_len = input_ids.shape[1]
        if seq_len > self.config.max_seq_len:
            raise PicomamlError(
                f"{seq_len} tokens exceed the model window of {self.config.max_seq_len}"
            )
        try:
            x = self.embedding_proj(input_ids)  # [B, T, d]
        except IndexError as exc:  # CPU only: on CUDA an out-of-range id is a device assert
            vocab = self.config.vocab_size
            bad = input_ids[(input_ids < 0) | (input_ids >= vocab)]
            first = int(bad[0]) if bad.numel() else "?"
            raise PicomamlError(
                f"token id {first} is outside the model's vocabulary of {vocab} (ids "
                f"0..{vocab - 1}); the tokenizer does not match this checkpoint"
            ) from exc
        cos, sin = self.rope_cos[:seq_len], self.rope_sin[:seq_len]  # [T, Dh/2]
        for layer in self.layers:
            x = layer(x, cos, sin)  # [B, T, d]
        return self.output_norm(x)  # [B, T, d]

    def forward(
        self,
        input_ids: torch.Tensor,
        return_hidden: bool = False,
        targets: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits [B, T, V] (float32, as pico-train), plus hidden states [B, T, d] on request.

        With ``targets`` [B, T] it returns only the mean cross-entropy, computed chunk by
        chunk so the [B, T, V] logits never exist (:mod:`picomaml.model.loss`). It is an
        argument of ``forward`` so that wrappers that act on forward calls (Fabric's
        precision autocast, DDP) cover the loss too.
        """
        hidden = self.hidden_states(input_ids)  # [B, T, d]
        if targets is not None:
            return linear_cross_entropy(hidden, self.de_embedding_proj.weight, targets)
        logits = self.de_embedding_proj(hidden).float()  # [B, T, V]
        return (logits, hidden) if return_hidden else logits

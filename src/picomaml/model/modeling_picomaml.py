"""The Pico decoder for ``transformers``: the modeling file shipped inside every checkpoint.

This file is copied verbatim into every checkpoint folder picomaml writes (pretraining
checkpoints, fine-tuned backbones, ``picomaml model export``), and ``config.json``'s
``auto_map`` points at it, so

    AutoModelForCausalLM.from_pretrained(FOLDER, trust_remote_code=True)

works without picomaml installed. Hence it imports only ``torch`` and ``transformers``
(and the standard library), never picomaml. Its arithmetic is that of
``picomaml.model.pico.PicoDecoder`` (itself pico-train's): the test suite checks that both
give the same logits on the same ids. Parameter names are pico-train's, under the
``pico_decoder.`` prefix of the safetensors file.

Differences from picomaml's class, all about the ``transformers`` side:

- RoPE tables are computed in ``forward`` (no buffers), because ``transformers`` builds
  models on the meta device and leaves non-persistent buffers uninitialised;
- there is no key/value cache: ``generate()`` recomputes the prefix at each step
  (``use_cache`` is false), which is exact and fast enough for these model sizes;
- there is no attention mask: causal attention makes right padding harmless, so a mask
  that is not right-padding (left padding, holes) is refused instead of being ignored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast


class PicoDecoderHFConfig(PretrainedConfig):
    """The fields of pico-train's ``ModelConfig``, as picomaml writes them to config.json."""

    model_type = "pico_decoder"
    attribute_map = {
        "hidden_size": "d_model",
        "num_hidden_layers": "n_layers",
        "num_attention_heads": "attention_n_heads",
        "max_position_embeddings": "max_seq_len",
    }

    def __init__(
        self,
        d_model: int = 96,
        n_layers: int = 12,
        vocab_size: int = 50304,
        max_seq_len: int = 2048,
        attention_n_heads: int = 12,
        attention_n_kv_heads: int | None = 4,
        activation_hidden_dim: int | None = None,
        norm_eps: float = 1e-6,
        position_emb_theta: float = 10000.0,
        batch_size: int = 1024,
        **kwargs,
    ) -> None:
        self.d_model = d_model
        self.n_layers = n_layers
        self.vocab_size = vocab_size
        self.max_seq_len = max_seq_len
        self.attention_n_heads = attention_n_heads
        self.attention_n_kv_heads = attention_n_kv_heads or attention_n_heads
        self.activation_hidden_dim = activation_hidden_dim or 4 * d_model
        self.norm_eps = norm_eps
        self.position_emb_theta = position_emb_theta
        self.batch_size = batch_size
        kwargs["tie_word_embeddings"] = False  # untied input and output embeddings
        kwargs.setdefault("use_cache", False)  # no key/value cache (module docstring)
        super().__init__(**kwargs)


class RMSNorm(nn.Module):
    """RMS normalisation in float32, cast back to the input dtype, then scaled."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rope_tables(
    head_dim: int, seq_len: int, theta: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 cos and sin [seq_len, head_dim/2] of angle position * theta^(-2i/head_dim)."""
    exponents = torch.arange(0, head_dim, 2, device=device).float() / head_dim
    inv_freq = 1.0 / (theta**exponents)
    positions = torch.arange(seq_len, device=device).float()
    angles = torch.outer(positions, inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs (2i, 2i+1) of x [B, T, heads, Dh] as complex numbers, in float32."""
    xf = x.float().unflatten(-1, (-1, 2))
    real, imag = xf[..., 0], xf[..., 1]
    cos, sin = cos[:, None, :], sin[:, None, :]
    rotated = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)


class Attention(nn.Module):
    """Causal grouped-query self-attention: query head h reads key/value head h // (H / Hkv)."""

    def __init__(self, config: PicoDecoderHFConfig) -> None:
        super().__init__()
        self.n_heads = config.attention_n_heads
        self.n_kv_heads = config.attention_n_kv_heads
        self.head_dim = config.d_model // config.attention_n_heads
        kv_width = self.n_kv_heads * self.head_dim
        self.q_proj = nn.Linear(config.d_model, config.d_model, bias=False)
        self.k_proj = nn.Linear(config.d_model, kv_width, bias=False)
        self.v_proj = nn.Linear(config.d_model, kv_width, bias=False)
        self.o_proj = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        rep = self.n_heads // self.n_kv_heads
        if rep > 1:
            k = k.repeat_interleave(rep, dim=2)
            v = v.repeat_interleave(rep, dim=2)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )
        return self.o_proj(out.transpose(1, 2).reshape(B, T, -1))


class SwiGLU(nn.Module):
    """Gated feed-forward ``w_2(silu(w_0 x) * w_1 x)``."""

    def __init__(self, config: PicoDecoderHFConfig) -> None:
        super().__init__()
        self.w_0 = nn.Linear(config.d_model, config.activation_hidden_dim, bias=False)
        self.w_1 = nn.Linear(config.d_model, config.activation_hidden_dim, bias=False)
        self.w_2 = nn.Linear(config.activation_hidden_dim, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(F.silu(self.w_0(x)) * self.w_1(x))


class Block(nn.Module):
    """Pre-norm residual block: attention then SwiGLU."""

    def __init__(self, config: PicoDecoderHFConfig) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attention = Attention(config)
        self.swiglu_norm = RMSNorm(config.d_model, config.norm_eps)
        self.swiglu = SwiGLU(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), cos, sin)
        return h + self.swiglu(self.swiglu_norm(h))


class PicoDecoder(nn.Module):
    """Embedding -> blocks -> RMSNorm -> untied vocabulary projection (float32 logits)."""

    def __init__(self, config: PicoDecoderHFConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding_proj = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.output_norm = RMSNorm(config.d_model, config.norm_eps)
        self.de_embedding_proj = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        seq_len = input_ids.shape[1]
        if seq_len > self.config.max_seq_len:
            raise ValueError(
                f"{seq_len} tokens exceed the model window of {self.config.max_seq_len}"
            )
        x = self.embedding_proj(input_ids)
        head_dim = self.config.d_model // self.config.attention_n_heads
        cos, sin = rope_tables(head_dim, seq_len, self.config.position_emb_theta, x.device)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.de_embedding_proj(self.output_norm(x)).float()


def _check_right_padding(attention_mask: torch.Tensor) -> None:
    """Refuse masks other than right padding: the model has no mask, only causality."""
    mask = attention_mask.bool()
    ones = mask.sum(-1, keepdim=True)
    expected = torch.arange(mask.shape[-1], device=mask.device)[None, :] < ones
    if not torch.equal(mask, expected):
        raise ValueError(
            "PicoDecoderHF takes no attention mask: causal attention makes right padding "
            "harmless, but this mask has left padding or holes (use padding_side='right', "
            "or generate from one prompt at a time)"
        )


class PicoDecoderHF(PreTrainedModel, GenerationMixin):
    """A causal LM around :class:`PicoDecoder`; weights live under ``pico_decoder.``."""

    config_class = PicoDecoderHFConfig
    base_model_prefix = "pico_decoder"
    main_input_name = "input_ids"
    _no_split_modules = ["Block"]

    def __init__(self, config: PicoDecoderHFConfig) -> None:
        super().__init__(config)
        self.pico_decoder = PicoDecoder(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """N(0, 0.02) for projections and embeddings, ones for norms (only for weights that
        a checkpoint does not provide, e.g. ``from_config``)."""
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        elif isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.pico_decoder.embedding_proj

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.pico_decoder.embedding_proj = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast | tuple:
        """Logits [B, T, V] in float32; with ``labels`` also the mean next-token loss
        (labels shifted inside, ``-100`` ignored, as every ``transformers`` causal LM)."""
        if attention_mask is not None:
            _check_right_padding(attention_mask)
        logits = self.pico_decoder(input_ids)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1).to(logits.device),
                ignore_index=-100,
            )
        if return_dict is False:
            return (logits,) if loss is None else (loss, logits)
        return CausalLMOutputWithPast(loss=loss, logits=logits)

    def prepare_inputs_for_generation(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> dict:
        """The whole sequence at every step (no key/value cache)."""
        return {"input_ids": input_ids, "attention_mask": attention_mask}


PicoDecoderHFConfig.register_for_auto_class()
PicoDecoderHF.register_for_auto_class("AutoModelForCausalLM")

"""A Pico folder on disk: ``config.json`` in pico-train's Hugging Face form and
``model.safetensors``, written by :func:`save_pico` and read back, shape-checked, by
:func:`load_pico` (so published Pico checkpoints load here and ours load in pico-train).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from picomaml.errors import PicomamlError
from picomaml.fileio import write_text, write_with
from picomaml.layout import PICO_CONFIG, PICO_WEIGHTS
from picomaml.model.hf_files import HF_CONFIG_EXTRAS, write_hf_files
from picomaml.model.pico import (
    HF_PREFIX,
    MODEL_TYPES,
    WEIGHT_PREFIXES,
    PicoConfig,
    PicoDecoder,
    check_config_fields,
    count_parameters,
)

# pico-train's attention stores ``batch_size`` (it does not change the math); its
# PicoDecoderHF cannot be built from a config.json without it, so we write its default.
PICO_TRAIN_BATCH_SIZE = 1024


def _hf_config(config: PicoConfig) -> dict[str, object]:
    """config.json in the Hugging Face Pico layout (the fields of pico-train's ModelConfig)."""
    return {
        "architectures": ["PicoDecoderHF"],
        "model_type": "pico_decoder",
        "d_model": config.d_model,
        "n_layers": config.n_layers,
        "vocab_size": config.vocab_size,
        "batch_size": PICO_TRAIN_BATCH_SIZE,
        "max_seq_len": config.max_seq_len,
        "attention_n_heads": config.n_heads,
        "attention_n_kv_heads": config.n_kv_heads,
        "activation_hidden_dim": config.hidden_dim,
        "norm_eps": config.norm_eps,
        "position_emb_theta": config.rope_theta,
        "torch_dtype": "float32",
        **HF_CONFIG_EXTRAS,
    }


# config.json key -> (PicoConfig field, expected JSON type). Other keys (architectures,
# auto_map, batch_size, dropout, torch_dtype, transformers_version, ...) are ignored.
HF_TO_FIELD: dict[str, tuple[str, type]] = {
    "d_model": ("d_model", int),
    "n_layers": ("n_layers", int),
    "vocab_size": ("vocab_size", int),
    "max_seq_len": ("max_seq_len", int),
    "attention_n_heads": ("n_heads", int),
    "attention_n_kv_heads": ("n_kv_heads", int),
    "activation_hidden_dim": ("activation_hidden_dim", int),
    "norm_eps": ("norm_eps", float),
    "position_emb_theta": ("rope_theta", float),
}
OPTIONAL_HF_KEYS = {"attention_n_kv_heads", "activation_hidden_dim"}
FIELD_TO_HF = {field: key for key, (field, _) in HF_TO_FIELD.items()}


def read_pico_config(folder: str | Path) -> PicoConfig:
    """Read a Hugging Face Pico ``config.json`` without loading weights.

    ``attention_n_kv_heads`` null or absent means plain multi-head attention; an
    ``activation_hidden_dim`` of 4 d is stored as None so a saved tier reads back equal
    to ``config_for(size)``.
    """
    path = Path(folder) / PICO_CONFIG
    if not path.is_file():
        raise PicomamlError(f"not a Pico model folder (no config.json): {folder}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PicomamlError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise PicomamlError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    if raw.get("model_type", "pico_decoder") not in MODEL_TYPES:
        raise PicomamlError(
            f"{path}: model_type is {raw['model_type']!r}, expected 'pico_decoder' (or the older "
            "name 'pico')"
        )
    missing = [k for k in HF_TO_FIELD if k not in raw and k not in OPTIONAL_HF_KEYS]
    if missing:
        raise PicomamlError(f"{path}: missing key(s) {', '.join(missing)}")
    fields: dict[str, int | float] = {}
    for key, (field, kind) in HF_TO_FIELD.items():
        value = raw.get(key)
        if value is None:
            continue
        ok = isinstance(value, int) if kind is int else isinstance(value, (int, float))
        if not ok or isinstance(value, bool):
            raise PicomamlError(f"{path}: {key} must be a {kind.__name__}, got {value!r}")
        fields[field] = kind(value)
    fields.setdefault("n_kv_heads", fields["n_heads"])
    if fields.get("activation_hidden_dim") == 4 * fields["d_model"]:
        del fields["activation_hidden_dim"]  # the default width, read back as None
    try:
        check_config_fields(fields, FIELD_TO_HF)
        return PicoConfig(**fields)  # type: ignore[arg-type]
    except PicomamlError as exc:
        raise PicomamlError(f"{path}: {exc}") from exc


def save_pico(model: PicoDecoder, folder: str | Path) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (float32 keys ``pico_decoder.*``), and
    the files that let ``transformers`` load the folder (:mod:`picomaml.model.hf_files`).

    Each file is replaced atomically, config.json last, so an interrupted save never leaves
    a config.json describing weights that are not there.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper: save the plain names
    tensors = {
        HF_PREFIX + name: t.detach().to("cpu", torch.float32).contiguous()
        for name, t in model.state_dict().items()
    }
    config_text = json.dumps(_hf_config(model.config), indent=2) + "\n"
    write_with(
        folder / PICO_WEIGHTS, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"})
    )
    write_hf_files(folder, model.config.max_seq_len)
    write_text(folder / PICO_CONFIG, config_text)
    return folder


def _strip_prefix(name: str) -> str:
    for prefix in WEIGHT_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def check_vocab(config: PicoConfig, n_token_ids: int, origin: str) -> None:
    """Raise unless token ids ``0 .. n_token_ids - 1`` all have an embedding row.

    Published Pico-MAML checkpoints have ``vocab_size`` 50,281 (the OLMo tokenizer plus
    ``[MASK]``), vanilla ones 50,304: both cover the OLMo tokenizer's 50,280 ids. Checking
    once here replaces a per-batch range check (a device sync) on the GPU path.
    """
    if n_token_ids > config.vocab_size:
        raise PicomamlError(
            f"{origin}: the tokenizer has {n_token_ids} token ids but the backbone's vocab_size "
            f"is {config.vocab_size}, so ids {config.vocab_size}..{n_token_ids - 1} have no "
            "embedding; use the tokenizer this checkpoint was trained with"
        )


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")


def state_shapes(config: PicoConfig) -> dict[str, tuple[int, ...]]:
    """Name and shape of every tensor of ``PicoDecoder(config).state_dict()``, computed
    without building the model (tests check that the two agree)."""
    d, v, h = config.d_model, config.vocab_size, config.hidden_dim
    kv = config.n_kv_heads * config.head_dim
    shapes: dict[str, tuple[int, ...]] = {"embedding_proj.weight": (v, d)}
    for i in range(config.n_layers):
        shapes.update(
            {
                f"layers.{i}.attention_norm.weight": (d,),
                f"layers.{i}.attention.q_proj.weight": (d, d),
                f"layers.{i}.attention.k_proj.weight": (kv, d),
                f"layers.{i}.attention.v_proj.weight": (kv, d),
                f"layers.{i}.attention.o_proj.weight": (d, d),
                f"layers.{i}.swiglu_norm.weight": (d,),
                f"layers.{i}.swiglu.w_0.weight": (h, d),
                f"layers.{i}.swiglu.w_1.weight": (h, d),
                f"layers.{i}.swiglu.w_2.weight": (d, h),
            }
        )
    shapes["output_norm.weight"] = (d,)
    shapes["de_embedding_proj.weight"] = (v, d)
    return shapes


def header_shapes(weights: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names (prefixes removed) and shapes from a safetensors file's header, without
    reading the tensors."""
    try:
        with safe_open(str(weights), framework="pt") as fh:
            names = fh.keys()  # noqa: SIM118 - a safetensors handle is not iterable
            raw = {name: tuple(fh.get_slice(name).get_shape()) for name in names}
    except Exception as exc:  # safetensors raises its own error types for bad files
        raise PicomamlError(f"{weights}: cannot read safetensors file ({exc})") from exc
    shapes = {_strip_prefix(k): v for k, v in raw.items()}
    if len(shapes) != len(raw):
        raise PicomamlError(
            f"{weights}: tensor names clash once the prefixes {', '.join(WEIGHT_PREFIXES)} "
            "are removed (a mix of naming schemes in one file)"
        )
    return shapes


def check_weights_fit(config: PicoConfig, weights: Path) -> None:
    """Raise unless the tensors in ``weights`` (its header only) are exactly those of a
    Pico decoder of ``config``. Cheap, and done before the model is allocated: a
    config.json with huge dimensions is one line, not gigabytes allocated first."""
    found = header_shapes(weights)
    n_expected = 3 + 9 * config.n_layers  # tensors outside the blocks, and per block
    if n_expected > len(found) + 9000:  # not worth listing 9 names per missing block
        raise PicomamlError(
            f"{weights}: holds {len(found)} tensors, but config.json says n_layers="
            f"{config.n_layers} ({n_expected:,} tensors)"
        )
    expected = state_shapes(config)
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise PicomamlError(
            f"{weights}: tensors do not match the Pico decoder of its config.json "
            f"(missing: {_names(missing) or 'none'}; unexpected: {_names(unexpected) or 'none'})"
        )
    for name, shape in expected.items():
        if found[name] != shape:
            raise PicomamlError(
                f"{weights}: {name} has shape {found[name]}, config.json implies {shape}"
            )


def load_pico(folder: str | Path, map_location: str | torch.device = "cpu") -> PicoDecoder:
    """Load a Hugging Face-format Pico folder (published Pico checkpoints or ours).

    Tensor names may carry the ``pico_decoder.`` prefix (HF format), the older ``pico.``
    prefix, or none (a bare state dict); missing or unexpected names and wrong shapes are
    errors naming them, found in the file's header before anything is allocated.
    Weights stored in another dtype (e.g. bf16) are cast to the model's float32.
    """
    folder = Path(folder)
    config = read_pico_config(folder)
    weights = folder / PICO_WEIGHTS
    if not weights.is_file():
        raise PicomamlError(f"no model.safetensors in {folder}")
    check_weights_fit(config, weights)
    try:
        model = PicoDecoder(config)
        raw = load_file(str(weights), device=str(map_location))
    except RuntimeError as exc:  # out of memory: torch's message spans lines
        total = count_parameters(config)["total"]
        raise PicomamlError(
            f"{folder}: cannot build a model of {total:,} parameters here "
            f"({' '.join(str(exc).split())[:200]})"
        ) from exc
    except Exception as exc:  # safetensors raises its own error types for bad files
        raise PicomamlError(f"{weights}: cannot read safetensors file ({exc})") from exc
    model.load_state_dict({_strip_prefix(k): v for k, v in raw.items()})
    return model.to(map_location)


def config_dict(config: PicoConfig) -> dict[str, object]:
    """Plain dict of a config (for run.json and reports)."""
    return dataclasses.asdict(config)

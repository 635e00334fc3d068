"""The files that make a Pico folder load with ``transformers`` alone.

``AutoModelForCausalLM.from_pretrained(FOLDER, trust_remote_code=True)`` needs, beside
``config.json`` and ``model.safetensors``:

* ``config.json`` keys ``auto_map`` (which class in which file), ``model_type`` and
  ``architectures`` (:data:`HF_CONFIG_EXTRAS` adds what :func:`picomaml.model.pico_files._hf_config`
  does not already write);
* the modeling file :data:`~picomaml.layout.PICO_MODELING`, a verbatim copy of
  :mod:`picomaml.model.modeling_picomaml` (one source, shipped as a package module);
* ``generation_config.json`` (EOS, no key/value cache);
* the tokenizer: the OLMo tokenizer shipped in the package (:mod:`picomaml.data.tokenizer`),
  as ``tokenizer.json`` with a ``tokenizer_config.json`` that ``AutoTokenizer`` reads.

Nothing here imports ``transformers``: writing these files is plain text.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from picomaml.data.tokenizer import EOS_ID, packaged_tokenizer_json
from picomaml.fileio import write_text
from picomaml.layout import PICO_GENERATION_CONFIG, PICO_MODELING, PICO_TOKENIZER_FILES

_MODULE = PICO_MODELING.removesuffix(".py")
AUTO_MAP = {
    "AutoConfig": f"{_MODULE}.PicoDecoderHFConfig",
    "AutoModelForCausalLM": f"{_MODULE}.PicoDecoderHF",
}
#: Keys added to config.json for ``transformers`` (pico-train ignores them).
HF_CONFIG_EXTRAS: dict[str, object] = {
    "auto_map": AUTO_MAP,
    "tie_word_embeddings": False,
    "use_cache": False,
}
EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|padding|>"  # id 1 in the OLMo tokenizer
PAD_ID = 1


@lru_cache(maxsize=1)
def modeling_source() -> str:
    """The text of :mod:`picomaml.model.modeling_picomaml` (what goes into every folder)."""
    return resources.files("picomaml.model").joinpath(PICO_MODELING).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    return packaged_tokenizer_json()


def generation_config() -> dict[str, object]:
    """``generation_config.json``: stop at EOS, pad with ``<|padding|>``, no cache."""
    return {
        "eos_token_id": EOS_ID,
        "pad_token_id": PAD_ID,
        "use_cache": False,
    }


def tokenizer_config(max_seq_len: int) -> dict[str, object]:
    """``tokenizer_config.json``: a fast tokenizer over ``tokenizer.json`` that adds no
    special tokens (picomaml encodes raw text without BOS/EOS)."""
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_seq_len,
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "bos_token": None,
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "padding_side": "right",
    }


def write_hf_files(folder: str | Path, max_seq_len: int) -> None:
    """Write the modeling file, generation config and tokenizer files into ``folder``
    (each atomically); config.json is the caller's, written last."""
    folder = Path(folder)
    tokenizer_json, tokenizer_cfg, special = PICO_TOKENIZER_FILES
    write_text(folder / PICO_MODELING, modeling_source())
    write_text(folder / PICO_GENERATION_CONFIG, _dumps(generation_config()))
    write_text(folder / tokenizer_json, _tokenizer_json())
    write_text(folder / tokenizer_cfg, _dumps(tokenizer_config(max_seq_len)))
    write_text(folder / special, _dumps({"eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN}))


def _dumps(payload: dict[str, object]) -> str:
    return json.dumps(payload, indent=2) + "\n"

"""The OLMo tokenizer used by every Pico model, shipped with the package.

The tokenizer is part of the model definition, so a gzipped copy lives in
``picomaml/data/assets/`` (provenance and Apache-2.0 licence next to it) and loading it
needs no data root and no network. ``DATA_ROOT/tokenizers/olmo-7b-0724.json`` overrides
it when present.

The file holds 50,280 entries (ids 0..50279, with ``<|endoftext|>`` = 50279). Models pad
the vocabulary to 50,304, so ids 50280..50303 have embeddings but no string;
:data:`MASK_ID` lives there, which lets the SMLMT ``[MASK]`` be added without changing
the embedding size or any published checkpoint's shapes.
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources
from pathlib import Path

from tokenizers import Tokenizer

from picomaml.errors import PicomamlError

TOKENIZER_FILE = "tokenizers/olmo-7b-0724.json"
PACKAGED_TOKENIZER = "assets/olmo-7b-0724.json.gz"
"""Path of the shipped copy inside the ``picomaml.data`` package."""
EOS_ID = 50279
MASK_ID = 50280
VOCAB_SIZE = 50304
TOKENIZER_SIZE = 50280


def load_tokenizer(data_root: Path | None = None):
    """Load the OLMo tokenizer (a ``tokenizers.Tokenizer``).

    ``data_root/tokenizers/olmo-7b-0724.json`` when the (resolved) data root has it, else
    the copy shipped with the package; ``None`` means no data root, so the shipped copy.
    A ``data_root`` that does not exist is an error, so a wrong path never falls back
    silently. Either way the tokenizer is checked against :data:`EOS_ID` and the expected
    size, because a different tokenizer would silently change every token id the models
    were trained on.
    """
    if data_root is not None and not Path(data_root).is_dir():
        raise PicomamlError(f"data root {data_root} does not exist")
    path = Path(data_root) / TOKENIZER_FILE if data_root is not None else None
    if path is not None and path.is_file():
        stat = path.stat()
        return _load(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    return _load(None, 0, 0)


@functools.lru_cache(maxsize=4)
def _load(path: str | None, mtime_ns: int, size: int):
    """Parse and check a tokenizer once per process (a grid of many cells loads it twice
    per cell); keyed by the file's identity so a changed file is read again. Callers only
    encode with it, never change its settings."""

    if path is not None:
        try:
            tok = Tokenizer.from_file(path)
        except Exception as exc:  # tokenizers raises plain Exception on a bad file
            raise PicomamlError(f"{path}: not a valid tokenizers JSON file ({exc})") from exc
        origin = path
    else:
        origin = f"picomaml/data/{PACKAGED_TOKENIZER}"
        tok = Tokenizer.from_str(packaged_tokenizer_json())
    check_tokenizer(tok, origin)
    return tok


def packaged_tokenizer_json() -> str:
    """The JSON text of the tokenizer shipped in the package."""
    ref = resources.files("picomaml.data").joinpath(PACKAGED_TOKENIZER)
    try:
        return gzip.decompress(ref.read_bytes()).decode("utf-8")
    except (OSError, EOFError) as exc:
        raise PicomamlError(
            f"the tokenizer shipped with picomaml ({ref}) is missing or damaged ({exc}); "
            "reinstall picomaml, or put the OLMo tokenizer JSON at DATA_ROOT/" + TOKENIZER_FILE
        ) from exc


def check_tokenizer(tok, origin: str) -> None:
    """Raise when ``tok`` is not the OLMo tokenizer the models expect."""
    if tok.token_to_id("<|endoftext|>") != EOS_ID:
        raise PicomamlError(
            f"{origin}: <|endoftext|> has id {tok.token_to_id('<|endoftext|>')}, "
            f"expected {EOS_ID} (not the OLMo-7B-0724 tokenizer?)"
        )
    size = tok.get_vocab_size()
    if size > MASK_ID:
        raise PicomamlError(
            f"{origin}: vocabulary has {size} entries, so the [MASK] id {MASK_ID} would clash "
            f"with a real token (expected {TOKENIZER_SIZE})"
        )

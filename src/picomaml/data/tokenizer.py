"""The OLMo tokenizer used by every Pico model, loaded offline from the data root.

The file ``tokenizers/olmo-7b-0724.json`` holds 50,280 entries (ids 0..50279, with
``<|endoftext|>`` = 50279). Models pad the vocabulary to 50,304, so ids 50280..50303 have
embeddings but no string; :data:`MASK_ID` lives there, which lets the SMLMT ``[MASK]`` be
added without changing the embedding size or any published checkpoint's shapes.
"""

from __future__ import annotations

from pathlib import Path

from picomaml.data.paths import resolve_data_dir
from picomaml.errors import PicomamlError

TOKENIZER_FILE = "tokenizers/olmo-7b-0724.json"
HUB_NAME = "allenai/OLMo-7B-0724-hf"
EOS_ID = 50279
MASK_ID = 50280
VOCAB_SIZE = 50304
TOKENIZER_SIZE = 50280


def load_tokenizer(data_dir: str | Path | None = None, allow_download: bool = False):
    """Load the OLMo tokenizer (a ``tokenizers.Tokenizer``) from the data root.

    Only when the file is missing and ``allow_download`` is true is the hub copy
    ``allenai/OLMo-7B-0724-hf`` fetched, so an offline run never waits on the network.
    The loaded tokenizer is checked against :data:`EOS_ID` and the expected size, because
    a different tokenizer would silently change every token id the models were trained on.
    """
    from tokenizers import Tokenizer

    try:
        root = resolve_data_dir(data_dir)
    except PicomamlError:
        if not allow_download:
            raise
        root = Path(data_dir or "data")
    path = root / TOKENIZER_FILE
    if path.is_file():
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception on a bad file
            raise PicomamlError(f"{path}: not a valid tokenizers JSON file ({exc})") from exc
        origin = str(path)
    elif allow_download:
        try:
            tok = Tokenizer.from_pretrained(HUB_NAME)
        except Exception as exc:
            raise PicomamlError(
                f"tokenizer file {path} is missing and downloading {HUB_NAME} failed ({exc})"
            ) from exc
        origin = HUB_NAME
    else:
        raise PicomamlError(
            f"tokenizer file not found: looked for {path} (data root {root}). Put the OLMo "
            f"tokenizer JSON there, point --data-dir/$PICOMAML_DATA at a data root that has "
            f"it, or allow downloading {HUB_NAME}"
        )
    check_tokenizer(tok, origin)
    return tok


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

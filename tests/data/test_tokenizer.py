"""The OLMo tokenizer file and the ids the models rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from picomaml.data.tokenizer import EOS_ID, MASK_ID, VOCAB_SIZE, load_tokenizer
from picomaml.errors import PicomamlError


def test_constants(tokenizer) -> None:
    assert tokenizer.token_to_id("<|endoftext|>") == EOS_ID == 50279
    assert tokenizer.get_vocab_size() == 50280 <= MASK_ID < VOCAB_SIZE == 50304
    assert tokenizer.id_to_token(MASK_ID) is None
    assert tokenizer.encode(" Maria").ids != tokenizer.encode("Maria").ids


def test_missing_root_is_an_error_but_a_root_without_the_file_is_not(tmp_path: Path) -> None:
    with pytest.raises(PicomamlError, match="does not exist"):
        load_tokenizer(tmp_path / "nope")
    assert load_tokenizer(tmp_path).token_to_id("<|endoftext|>") == EOS_ID  # the shipped copy


def test_bad_file(tmp_path: Path) -> None:
    (tmp_path / "tokenizers").mkdir()
    (tmp_path / "tokenizers" / "olmo-7b-0724.json").write_text("{not json", "utf-8")
    with pytest.raises(PicomamlError, match="not a valid"):
        load_tokenizer(tmp_path)

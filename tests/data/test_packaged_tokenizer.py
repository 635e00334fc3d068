"""The OLMo tokenizer shipped inside the package, and the data-root copy that overrides it."""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path

import pytest

from picomaml.data.tokenizer import (
    EOS_ID,
    TOKENIZER_FILE,
    TOKENIZER_SIZE,
    load_tokenizer,
    packaged_tokenizer_json,
)
from picomaml.errors import PicomamlError

ASSETS = resources.files("picomaml.data").joinpath("assets")


def test_shipped_json_is_the_one_its_readme_names() -> None:
    readme = ASSETS.joinpath("README.md").read_text("utf-8")
    documented = re.search(r"`([0-9a-f]{64})`", readme)
    assert documented is not None
    data = packaged_tokenizer_json().encode("utf-8")
    assert hashlib.sha256(data).hexdigest() == documented.group(1)
    assert f"{len(data):,} bytes unpacked" in readme
    assert "Apache License" in ASSETS.joinpath("LICENSE-Apache-2.0.txt").read_text("utf-8")


def test_loads_with_no_data_root(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ../shared/data, no ./data
    monkeypatch.delenv("PICOMAML_DATA", raising=False)
    tok = load_tokenizer()
    assert tok.get_vocab_size() == TOKENIZER_SIZE and tok.token_to_id("<|endoftext|>") == EOS_ID
    text = "Pumunta si Maria sa Cebu noong 1999."
    ids = tok.encode(text).ids
    assert len(ids) > 5 and tok.decode(ids) == text


def _write_override(root: Path, edit) -> None:
    spec = json.loads(packaged_tokenizer_json())
    edit(spec)
    (root / "tokenizers").mkdir(parents=True)
    (root / TOKENIZER_FILE).write_text(json.dumps(spec), "utf-8")


def test_data_root_copy_overrides_the_shipped_one(tmp_path: Path) -> None:
    def truncate(spec: dict) -> None:
        assert spec["truncation"] is None
        spec["truncation"] = {
            "direction": "Right",
            "max_length": 7,
            "strategy": "LongestFirst",
            "stride": 0,
        }

    _write_override(tmp_path / "root", truncate)
    assert load_tokenizer(tmp_path / "root").truncation["max_length"] == 7
    assert load_tokenizer(tmp_path).truncation is None  # a root without the file


def test_override_is_checked_like_the_shipped_copy(tmp_path: Path) -> None:
    def move_eos(spec: dict) -> None:
        for tok in spec["added_tokens"]:
            if tok["content"] == "<|endoftext|>":
                tok["content"] = "<|eos|>"

    _write_override(tmp_path, move_eos)
    with pytest.raises(
        PicomamlError, match=r"tokenizers/olmo-7b-0724\.json: .*(has id|would clash)"
    ):
        load_tokenizer(tmp_path)

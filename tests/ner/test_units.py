"""Fast unit tests of the NER pipeline pieces that need no backbone: config, words, spans."""

from __future__ import annotations

import math

import pytest

from picomaml.config import load_config
from picomaml.errors import PicomamlError
from picomaml.ner.config import FinetuneConfig
from picomaml.ner.finetune import EarlyStopping
from picomaml.ner.tag_text import entity_spans, split_words


def test_split_words_splits_punctuation_keeps_inner_marks() -> None:
    assert split_words("Pumunta si Maria sa Cebu.") == ["Pumunta", "si", "Maria", "sa", "Cebu", "."]
    assert split_words("  mag-aral  si O'Brien (Manila),ok!") == [
        "mag-aral",
        "si",
        "O'Brien",
        "(",
        "Manila",
        ")",
        ",",
        "ok",
        "!",
    ]
    assert split_words("U.S. 3.14") == ["U.S", ".", "3.14"]
    assert split_words("   ") == []


def test_entity_spans_default_mode() -> None:
    words = ["si", "Juan", "dela", "Cruz", "sa", "Cebu"]
    tags = ["O", "B-PER", "I-PER", "I-PER", "O", "I-LOC"]
    assert entity_spans(words, tags) == [
        {"type": "PER", "start": 1, "end": 4, "text": "Juan dela Cruz"},
        {"type": "LOC", "start": 5, "end": 6, "text": "Cebu"},  # orphan I- opens a span
    ]


def test_early_stopping_patience_and_ties() -> None:
    es = EarlyStopping(patience=2)
    assert es.update(0.1) == (True, False)
    assert es.update(0.1) == (False, False)  # a tie is no improvement
    assert es.update(0.3) == (True, False)
    assert es.update(0.2) == (False, False)
    assert es.update(0.2) == (False, True)
    assert es.best == 0.3 and not math.isinf(es.best)


def test_config_defaults_overrides_and_errors(tmp_path) -> None:
    cfg = load_config(FinetuneConfig, "configs/finetune/paper.yaml", ["backbone=/x", "regime=full"])
    assert cfg.learning_rate == 3e-5 and cfg.epochs == 10 and not cfg.constraints
    cfg = load_config(FinetuneConfig, None, ["backbone=/x", "lr.head=0.5"])
    assert cfg.learning_rate == 0.5 and cfg.lr.full == 3e-5
    with pytest.raises(PicomamlError, match="missing required config key.*backbone"):
        load_config(FinetuneConfig, None, [])
    with pytest.raises(PicomamlError, match="unknown config key.*epoch\\b"):
        load_config(FinetuneConfig, None, ["backbone=/x", "epoch=3"])
    with pytest.raises(PicomamlError, match="regime"):
        load_config(FinetuneConfig, None, ["backbone=/x", "regime=partial"])
    with pytest.raises(PicomamlError, match="window"):
        load_config(FinetuneConfig, None, ["backbone=/x", "window=4"])
    with pytest.raises(PicomamlError, match="lr.head"):
        load_config(FinetuneConfig, None, ["backbone=/x", "lr.head=0"])
    demo = load_config(FinetuneConfig, "configs/finetune/demo.yaml", ["backbone=/x"])
    assert demo.max_train_sentences > 0

"""Backbone resolution, size checks, word features (vs brute force) and the head-only cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from picomaml.errors import PicomamlError
from picomaml.model.backbone import check_size, load_backbone, resolve_backbone, tier_of
from picomaml.ner.features import (
    FeatureCache,
    cache_key,
    encode_sentence,
    encode_sentences,
    pad_batch,
    word_features,
)
from picomaml.ner.head import build_tagger, decode_features


@pytest.fixture(scope="module")
def tiny_model():
    from picomaml.model import PicoConfig, PicoDecoder

    torch.manual_seed(1)
    cfg = PicoConfig(d_model=48, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64)
    return PicoDecoder(cfg).eval()


@pytest.fixture(scope="module")
def sentences(fixture_data_root: Path) -> list[list[str]]:
    from picomaml.data.registry import load_split

    sents, _ = load_split("tl_trg", "test", fixture_data_root)
    return [list(s.tokens) for s in sents[:12]]


def _save(model, folder: Path) -> Path:
    from picomaml.model import save_pico

    save_pico(model, folder)
    return folder


def test_resolve_folder_run_dir_and_step(tiny_model, tmp_path: Path) -> None:
    plain = _save(tiny_model, tmp_path / "plain")
    r = resolve_backbone(plain)
    assert r.folder == plain.resolve() and r.step is None and r.variant is None

    run = tmp_path / "run"
    _save(tiny_model, run / "checkpoints" / "step_20")
    _save(tiny_model, run / "checkpoints" / "step_40")
    (run / "checkpoints" / "latest").write_text("step_40\n")
    (run / "config.yaml").write_text("meta:\n  enabled: true\n")
    r = resolve_backbone(run)
    assert r.folder.name == "step_40" and r.step == 40 and r.variant == "maml"
    r = resolve_backbone(run / "checkpoints" / "step_20")
    assert r.step == 20 and r.run_dir == run and r.variant == "maml"


def test_resolve_errors_name_the_missing_file(tiny_model, tmp_path: Path) -> None:
    with pytest.raises(PicomamlError, match="does not exist"):
        resolve_backbone(tmp_path / "nope")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(PicomamlError, match="no checkpoints/latest"):
        resolve_backbone(run)
    (run / "checkpoints" / "latest").write_text("best")
    with pytest.raises(PicomamlError, match="expected 'step_N'"):
        resolve_backbone(run)
    (run / "checkpoints" / "latest").write_text("step_7")
    with pytest.raises(PicomamlError, match="step_7 does not exist"):
        resolve_backbone(run)
    folder = _save(tiny_model, tmp_path / "broken")
    (folder / "model.safetensors").unlink()
    with pytest.raises(PicomamlError, match="missing model.safetensors"):
        resolve_backbone(folder)


def test_size_check(tiny_model, tmp_path: Path) -> None:
    from picomaml.model import config_for

    assert tier_of(config_for("tiny")) == "tiny" and tier_of(config_for("large")) == "large"
    assert tier_of(tiny_model.config) is None
    check_size(config_for("small"), "small", "x")
    check_size(tiny_model.config, None, "x")
    with pytest.raises(PicomamlError, match="is a medium backbone.*size: small.*d_model 768"):
        check_size(config_for("medium"), "small", "x")
    folder = _save(tiny_model, tmp_path / "b")
    with pytest.raises(PicomamlError, match="custom shape.*size: tiny"):
        load_backbone(folder, "tiny")


def test_word_features_equal_brute_force(tiny_model, tokenizer, sentences) -> None:
    encoded = encode_sentences(tokenizer, sentences, 64)
    n_words = [len(s) for s in sentences]
    with torch.no_grad():
        batched = word_features(tiny_model, encoded, n_words, batch_size=5)
        for words, windows, feats in zip(sentences, encoded, batched, strict=True):
            assert feats.shape == (len(words), 48)
            expect = torch.zeros(len(words), 48)
            for w in windows:  # each window alone, no padding
                hidden = tiny_model.hidden_states(torch.tensor([w.ids]))[0]
                expect[list(w.words)] = hidden[list(w.positions)]
            torch.testing.assert_close(feats, expect, atol=1e-5, rtol=1e-5)


def test_long_sentence_every_word_scored_prefix_unchanged(tiny_model, tokenizer, sentences) -> None:
    words = ([w for s in sentences for w in s] * 4)[:150]
    windows = encode_sentence(tokenizer, words, 16)
    assert len(windows) > 1 and all(len(w.ids) <= 16 for w in windows)
    assert sorted(i for w in windows for i in w.words) == list(range(len(words)))
    with torch.no_grad():
        small = word_features(tiny_model, [windows], [len(words)])[0]
        full = word_features(tiny_model, [encode_sentence(tokenizer, words, 64)], [len(words)])[0]
    assert small.shape == full.shape == (150, 48)
    first = list(windows[0].words)  # same left context in both runs (causal model)
    torch.testing.assert_close(small[first], full[first], atol=1e-5, rtol=1e-5)


def test_cache_equals_recomputed_and_roundtrips(tiny_model, tokenizer, sentences, tmp_path) -> None:
    encoded = encode_sentences(tokenizer, sentences, 64)
    n_words = [len(s) for s in sentences]
    path = tmp_path / "c.pt"
    cache = FeatureCache.build(tiny_model, encoded, n_words, batch_size=3, path=path)
    with torch.no_grad():
        fresh = word_features(tiny_model, encoded, n_words, batch_size=1)
    assert len(cache) == len(sentences)
    for i, f in enumerate(fresh):
        torch.testing.assert_close(cache[i], f, atol=1e-5, rtol=1e-5)
    again = FeatureCache.build(tiny_model, [], n_words, path=path)  # loaded, not recomputed
    assert torch.equal(again.flat, cache.flat)
    with pytest.raises(PicomamlError, match="does not match"):
        FeatureCache.build(tiny_model, [], n_words[:-1], path=path)
    folder = _save(tiny_model, tmp_path / "bb")
    assert cache_key(folder, sentences, 64) != cache_key(folder, sentences, 32)
    assert cache_key(folder, sentences, 64) != cache_key(folder, sentences[1:], 64)


def test_empty_sentence_gets_empty_features_and_tags(tiny_model, tokenizer) -> None:
    assert encode_sentence(tokenizer, [], 64) == []
    encoded = encode_sentences(tokenizer, [[], ["Maria"]], 64)
    with torch.no_grad():
        feats = word_features(tiny_model, encoded, [0, 1])
    assert feats[0].shape == (0, 48) and feats[1].shape == (1, 48)
    tagger = build_tagger(48, constraints=False)
    paths = decode_features(tagger, feats)
    assert paths[0] == [] and len(paths[1]) == 1


def test_pad_batch() -> None:
    feats = [torch.ones(3, 4), torch.ones(1, 4) * 2, torch.zeros(0, 4)]
    x, mask, tags = pad_batch(feats, [[1, 2, 3], [4], []])
    assert x.shape == (3, 3, 4) and mask.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert tags.tolist() == [[1, 2, 3], [4, 0, 0], [0, 0, 0]]
    assert torch.equal(x[1, 1:], torch.zeros(2, 4))
    with pytest.raises(ValueError, match="3 features but 2 tags"):
        pad_batch(feats[:1], [[1, 2]])


def test_word_longer_than_window_is_still_scored(tiny_model, tokenizer) -> None:
    words = ["Si", "qzxvbkqjwp" * 12, "ay", "taga-Cebu", "."]
    windows = encode_sentence(tokenizer, words, 16)
    assert sorted(i for w in windows for i in w.words) == list(range(5))
    with torch.no_grad():
        feats = word_features(tiny_model, [windows], [5])[0]
    assert feats.shape == (5, 48) and torch.isfinite(feats).all()

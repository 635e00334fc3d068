"""SMLMT sampler: candidates, balance, masking, distinct places, determinism, errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from picomaml.data.tokenizer import EOS_ID, MASK_ID
from picomaml.errors import PicomamlError
from picomaml.pretrain.smlmt import (
    Episode,
    SMLMTSampler,
    candidate_words,
    check_episode,
    decode_vocab,
)

ROW = 129


@pytest.fixture(scope="module")
def decoded(tokenizer: Tokenizer) -> list[str]:
    return decode_vocab(tokenizer)


@pytest.fixture(scope="module")
def rows(fixture_data_root: Path, tokenizer: Tokenizer) -> np.ndarray:
    """Packed rows of ROW tokens from the whole fixture corpus (about 550 rows): hundreds of
    eligible words at each of the bounds used below."""
    path = fixture_data_root / "corpus" / "english-mini" / "train.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh]
    ids = np.concatenate([np.asarray(e.ids + [EOS_ID]) for e in tokenizer.encode_batch(texts)])
    return ids[: ids.size // ROW * ROW].reshape(-1, ROW)


def _sampler(rows: np.ndarray, decoded: list[str], **kw) -> SMLMTSampler:
    args = dict(ways=8, shots=4, queries=4, window=64, mask_id=MASK_ID, min_count=16)
    args.update(kw)
    return SMLMTSampler(rows, candidate_words(decoded), **args)


def test_candidate_words_brute_force(decoded: list[str]) -> None:
    cand = set(candidate_words(decoded).tolist())
    expected = {i for i, t in enumerate(decoded) if len(t) > 1 and t[0] == " " and t[1:].isalpha()}
    assert cand == expected
    assert decoded.index(" the") in cand and decoded.index("the") not in cand
    assert EOS_ID not in cand
    assert all(decoded[i] != " 1999" for i in cand)
    digits = set(candidate_words(decoded, allow_digits=True).tolist())
    assert cand <= digits and all(any(c.isalpha() for c in decoded[i]) for i in digits)


def test_candidate_words_options() -> None:
    vocab = ["<|endoftext|>", " cat", "cat", " c4t", " 42", " o'clock", " ", " Ünïcode", "\ufffd"]
    assert candidate_words(vocab).tolist() == [1, 7]
    assert candidate_words(vocab, allow_digits=True).tolist() == [1, 3, 7]
    assert candidate_words(vocab, allow_punct=True).tolist() == [1, 5, 7]


def test_frequency_bounds(rows: np.ndarray, decoded: list[str]) -> None:
    s = _sampler(rows, decoded, min_count=20, max_frequency=1e-3)
    counts = np.bincount(rows.ravel(), minlength=MASK_ID)
    assert (counts[s.words] >= 20).all() and (counts[s.words] <= 1e-3 * rows.size).all()
    assert decoded.index(" the") not in set(s.words.tolist())  # far too frequent
    for i in range(0, s.words.size, 97):
        occ = s.occurrences(i)
        assert occ.size == counts[s.words[i]] and (rows.ravel()[occ] == s.words[i]).all()


def test_episode_balance_masking_and_places(rows: np.ndarray, decoded: list[str]) -> None:
    s = _sampler(rows, decoded)
    rng = np.random.default_rng(3)
    for _ in range(5):
        ep = s.sample(rng)
        check_episode(ep, 4, 4, MASK_ID)
        for labels, k in ((ep.support_labels, 4), (ep.query_labels, 4)):
            assert sorted(np.unique(labels).tolist()) == list(range(8))  # no label collapse
            assert (np.bincount(labels, minlength=8) == k).all()
        assert len(set(ep.words.tolist())) == 8
        for ids, mask, labels, places in (
            (ep.support_ids, ep.support_mask, ep.support_labels, ep.support_places),
            (ep.query_ids, ep.query_mask, ep.query_labels, ep.query_places),
        ):
            assert ids.shape == (32, 64) and mask.shape == (32, 64)
            for x, m, y, (r, st) in zip(ids, mask, labels, places, strict=True):
                original = rows[r, st : st + 64]
                word = ep.words[y]
                assert m.any() and (x[m] == MASK_ID).all()
                assert (m == (original == word)).all()  # every occurrence masked, nothing else
                assert (x[~m] == original[~m]).all()
                assert word not in x
        for c in range(8):
            places = np.concatenate(
                [ep.support_places[ep.support_labels == c], ep.query_places[ep.query_labels == c]]
            )
            assert len({tuple(p) for p in places.tolist()}) == 8  # distinct places
            overlap = [
                (a, b)
                for i, a in enumerate(places.tolist())
                for b in places.tolist()[i + 1 :]
                if a[0] == b[0] and abs(a[1] - b[1]) < 64
            ]
            assert not overlap  # every word here has >= 16 occurrences in many rows


def test_label_word_mapping_varies(rows: np.ndarray, decoded: list[str]) -> None:
    s = _sampler(rows, decoded)
    rng = np.random.default_rng(0)
    words_order = [s.sample(rng).words.tolist() for _ in range(200)]
    # A word keeps no fixed label: across episodes the label->word mapping changes.
    assert len({tuple(w) for w in words_order}) == 200
    # And no fixed order of labels either: any fixed rule (by id, frequency, pool order)
    # would put two words that meet twice in the same relative order both times.
    seen: dict[tuple[int, int], bool] = {}
    flipped = 0
    for words in words_order:
        for i, a in enumerate(words):
            for b in words[i + 1 :]:
                key, first = (min(a, b), max(a, b)), a < b
                flipped += key in seen and seen[key] != first
                seen[key] = first
    assert flipped > 0


def test_determinism(rows: np.ndarray, decoded: list[str]) -> None:
    s = _sampler(rows, decoded)

    def draw(seed: int) -> Episode:
        return s.sample(np.random.default_rng(seed))

    a, b, c = draw(7), draw(7), draw(8)
    for name in ("support_ids", "query_ids", "support_labels", "query_labels", "words"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert a.seed == b.seed
    assert not np.array_equal(a.support_ids, c.support_ids)


def test_flat_pool_and_word_that_cannot_supply_enough_windows() -> None:
    # A row as long as the window: every occurrence in it yields the same place.
    base = np.arange(10, 74).repeat(1)  # 64 distinct filler ids
    rows = []
    for w in range(100, 103):
        row = base.copy()
        row[::8] = w  # 8 occurrences, one distinct window
        rows.append(row)
    rows = np.stack(rows)
    # Counted at construction: 8 occurrences but 1 distinct window makes no word eligible.
    with pytest.raises(PicomamlError, match="distinct windows"):
        SMLMTSampler(
            rows, np.array([100, 101, 102]), ways=2, shots=4, queries=4, window=64, mask_id=999
        )
    flat = np.tile(np.arange(10, 20), 200)
    flat[::10] = 5
    flat[5::10] = 6
    s = SMLMTSampler(flat, np.array([5, 6]), ways=2, shots=2, queries=2, window=8, mask_id=999)
    ep = s.sample(np.random.default_rng(0))
    check_episode(ep, 2, 2, 999)
    assert ep.support_places[:, 0].max() == 0  # one long row


def test_too_few_words_is_an_error(rows: np.ndarray, decoded: list[str]) -> None:
    with pytest.raises(PicomamlError, match="candidate words"):
        _sampler(rows[:3], decoded, ways=32)
    with pytest.raises(PicomamlError, match="window"):
        _sampler(rows, decoded, window=ROW + 1)


def test_whole_words_only_as_examples() -> None:
    # word 5 followed by continuation 7 ("John"+"son") half of the time.
    rng = np.random.default_rng(0)
    flat = rng.integers(10, 40, size=4000)
    starts = np.arange(0, 4000 - 1, 20)
    flat[starts] = 5
    flat[starts[::2] + 1] = 7
    flat[starts + 10] = 6
    rows = flat.reshape(-1, 40)
    kw = dict(ways=2, shots=3, queries=3, window=8, mask_id=99)
    plain = SMLMTSampler(rows, np.array([5, 6]), **kw)
    whole = SMLMTSampler(rows, np.array([5, 6]), continuations=np.array([7]), **kw)
    assert plain.counts.tolist() == [200, 200]
    assert whole.counts.tolist()[1] == 200 and whole.counts.tolist()[0] < 200
    flat_rows = rows.reshape(-1)
    for pos in whole.occurrences(0):
        assert pos % 40 == 39 or flat_rows[pos + 1] != 7
    ep = whole.sample(np.random.default_rng(1))
    check_episode(ep, 3, 3, 99)


def test_continuation_tokens() -> None:
    from picomaml.pretrain.smlmt import continuation_tokens

    vocab = [" John", "son", "<|endoftext|>", ",", "ing", " the", "", "9"]
    assert continuation_tokens(vocab).tolist() == [1, 4]

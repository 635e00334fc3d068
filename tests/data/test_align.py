"""Word alignment equals running-text tokenization; windows score every word once."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from picomaml.data.align import (
    WordAlignment,
    align_words,
    make_windows,
    subword_counts,
)
from picomaml.data.registry import load_split
from picomaml.errors import PicomamlError


def _check_running_text(tokenizer, root: Path, code: str, limit: int) -> int:
    """Alignment ids equal the running text's ids; words tile them in order. Returns #checked."""
    sents, _ = load_split(code, "test", root)
    for sent in sents[:limit]:
        al = align_words(tokenizer, sent.tokens)
        joined = tokenizer.encode(" ".join(sent.tokens), add_special_tokens=False).ids
        assert list(al.input_ids) == joined, sent.sent_id
        assert al.word_starts[0] == 0
        for s, k, nxt in zip(
            al.word_starts, al.word_lengths, [*al.word_starts[1:], len(joined)], strict=True
        ):
            assert k >= 1 and s + k == nxt
    return len(sents[:limit])


CODES = ["tl_trg", "ceb_gja", "zh_pud", "ru_pud", "sv_pud"]


@pytest.mark.parametrize("code", CODES)
def test_ids_equal_running_text(tokenizer, fixture_data_root: Path, code: str) -> None:
    assert _check_running_text(tokenizer, fixture_data_root, code, 150) > 0


@pytest.mark.needs_real_data
@pytest.mark.parametrize("code", CODES)
def test_ids_equal_running_text_on_real_files(tokenizer, data_dir: Path, code: str) -> None:
    """The real scripts and punctuation (fixture words come from a tiny lexicon)."""
    assert _check_running_text(tokenizer, data_dir, code, 150) > 0


def test_mid_sentence_word_has_space(tokenizer) -> None:
    al = align_words(tokenizer, ["Si", "Maria"])
    assert list(al.input_ids[al.word_starts[1] :]) == tokenizer.encode(" Maria").ids
    assert subword_counts(tokenizer, ["Si", "Maria"]) == list(al.word_lengths)


def test_empty_sentence(tokenizer) -> None:
    al = align_words(tokenizer, [])
    assert al.n_words == 0 and make_windows(al, 8) == []


def _alignment(lengths: list[int]) -> WordAlignment:
    """Synthetic alignment whose ids are the token positions (so slices are checkable)."""
    starts, pos = [], 0
    for k in lengths:
        starts.append(pos)
        pos += k
    return WordAlignment(tuple(range(pos)), tuple(starts), tuple(lengths))


def _reference_starts(lengths: list[int], max_len: int, context: int) -> list[int]:
    """Window start words by brute force over all candidate starts."""
    al = _alignment(lengths)
    starts, ends = al.word_starts, [s + k for s, k in zip(al.word_starts, lengths, strict=True)]
    out, first_new, start = [], 0, 0
    while first_new < len(lengths):
        if lengths[first_new] > max_len:
            out.append(first_new)
            first_new += 1
            start = first_new
            continue
        ok = [
            b
            for b in range(start, first_new + 1)
            if starts[first_new] - starts[b] <= context and ends[first_new] - starts[b] <= max_len
        ]
        start = min(ok)
        out.append(start)
        stop = max(
            e
            for e in range(first_new + 1, len(lengths) + 1)
            if ends[e - 1] - starts[start] <= max_len
        )
        first_new = stop
    return out


def test_windows_random_against_reference() -> None:
    rng = random.Random(0)
    for _ in range(400):
        n = rng.randint(1, 40)
        lengths = [rng.choice([1, 1, 1, 2, 3, 5, 9]) for _ in range(n)]
        max_len = rng.randint(1, 24)
        context = rng.randint(0, max_len - 1)
        al = _alignment(lengths)
        wins = make_windows(al, max_len, context)
        scored = [w for win in wins for w in win.word_indices]
        assert scored == list(range(n))  # every word exactly once, in order
        assert [w.start_word for w in wins] == _reference_starts(lengths, max_len, context)
        for win in wins:
            assert 1 <= len(win.input_ids) <= max_len
            offset = al.word_starts[win.start_word]
            assert win.input_ids == al.input_ids[offset : offset + len(win.input_ids)]
            for pos, w in zip(win.first_positions, win.word_indices, strict=True):
                assert win.input_ids[pos] == al.word_starts[w]  # ids are positions here
                assert pos == al.word_starts[w] - offset
            if lengths[win.word_indices[0]] <= max_len:
                last = win.word_indices[-1]
                assert offset + len(win.input_ids) == al.word_starts[last] + lengths[last]


def test_long_sentence_windows(tokenizer, fixture_data_root: Path) -> None:
    """A sentence far longer than the window (the fixture's 90-word sk_snk dev sentence): all
    words scored once, ids from running text."""
    sents, _ = load_split("sk_snk", "dev", fixture_data_root)
    sent = max(sents, key=len)
    assert len(sent) > 90
    al = align_words(tokenizer, sent.tokens)
    assert len(al.input_ids) > 40
    wins = make_windows(al, 16, 6)
    assert len(wins) > 2
    assert sorted(w for win in wins for w in win.word_indices) == list(range(len(sent)))
    for win in wins:
        for pos, w in zip(win.first_positions, win.word_indices, strict=True):
            s = al.word_starts[w]
            assert (
                win.input_ids[pos : pos + al.word_lengths[w]]
                == al.input_ids[s : s + al.word_lengths[w]]
            )
    (single,) = make_windows(al, 4096)
    assert single.input_ids == al.input_ids and single.word_indices == tuple(range(len(sent)))


def test_overlong_word_is_scored_alone() -> None:
    al = _alignment([2, 7, 1, 1])
    wins = make_windows(al, 4, 1)
    assert [w.word_indices for w in wins] == [(0,), (1,), (2, 3)]
    assert wins[1].input_ids == tuple(range(2, 6)) and wins[1].first_positions == (0,)


def test_bad_window_arguments() -> None:
    al = _alignment([1, 1])
    with pytest.raises(PicomamlError):
        make_windows(al, 0)
    with pytest.raises(PicomamlError):
        make_windows(al, 4, 4)

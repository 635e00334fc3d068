"""Words to subword ids for NER, and windows for sentences longer than the model.

Alignment rule: a word gets exactly the ids it has in running text, where the sentence
is its words joined by single spaces. The first word is encoded as is, every later word
as ``" " + word`` (GPT-NeoX byte-level BPE splits before a space, so this equals
tokenizing the joined sentence; mid-sentence "Maria" is the one token for " Maria").
Languages written without spaces (Chinese) are joined the same way: UNER gives words,
and a single rule keeps every word's ids independent of its neighbours.

Window rule (the backbone is a causal decoder, so a subword's state depends only on
what precedes it, and a word is represented by the state of its first subword):

* a sentence of at most ``max_len`` subwords is one window;
* otherwise windows hold whole words and never start inside a word. Each window is
  filled with as many words as fit in ``max_len`` subwords; the next window starts
  early enough that its first new word is preceded by up to ``context`` subwords of
  earlier words (default ``max_len // 2``), and as late as needed for that word to fit;
* every word is scored exactly once, in the first window that holds it: that is where
  it has the most left context, since later windows start further right;
* a single word with more than ``max_len`` subwords gets a window of its own holding
  its first ``max_len`` subwords. It is still scored (at its first subword, whose state
  the cut tail cannot influence in a causal model); the next window starts after it.

An empty sentence has no subwords and no windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from picomaml.errors import PicomamlError


@dataclass(frozen=True)
class WordAlignment:
    """Subword ids of one sentence and where each word's subwords are."""

    input_ids: tuple[int, ...]
    word_starts: tuple[int, ...]
    """Index in ``input_ids`` of each word's first subword."""
    word_lengths: tuple[int, ...]
    """Number of subwords of each word (always >= 1)."""

    @property
    def n_words(self) -> int:
        """Number of words."""
        return len(self.word_starts)


@dataclass(frozen=True)
class Window:
    """One backbone input and the words scored in it.

    ``first_positions[k]`` is the position in ``input_ids`` of the first subword of
    sentence word ``word_indices[k]``.
    """

    input_ids: tuple[int, ...]
    first_positions: tuple[int, ...]
    word_indices: tuple[int, ...]
    start_word: int
    """Sentence index of the first word in the window (scored or context)."""


def word_strings(words: Sequence[str]) -> list[str]:
    """The strings tokenized for each word: the first as is, later ones after a space."""
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def align_words(tokenizer, words: Sequence[str]) -> WordAlignment:
    """Subword ids of ``words`` as in running text, with each word's first-subword index."""
    return align_sentences(tokenizer, [words])[0]


def align_sentences(tokenizer, sentences: Sequence[Sequence[str]]) -> list[WordAlignment]:
    """:func:`align_words` of many sentences with one tokenizer call (the per-call cost
    dominated tagging short lines)."""
    strings = [s for words in sentences for s in word_strings(words)]
    unique = list(dict.fromkeys(strings))  # each distinct word string is encoded once
    encs = tokenizer.encode_batch(unique, add_special_tokens=False) if unique else []
    ids_of = {text: enc.ids for text, enc in zip(unique, encs, strict=True)}
    out = []
    k = 0
    for words in sentences:
        ids: list[int] = []
        starts: list[int] = []
        lengths: list[int] = []
        for i in range(len(words)):
            enc_ids = ids_of[strings[k]]
            k += 1
            if not enc_ids:
                raise PicomamlError(f"word {i} ({words[i]!r}) has no subwords (an empty token?)")
            starts.append(len(ids))
            lengths.append(len(enc_ids))
            ids.extend(enc_ids)
        out.append(WordAlignment(tuple(ids), tuple(starts), tuple(lengths)))
    return out


def subword_counts(tokenizer, words: Sequence[str]) -> list[int]:
    """Number of subwords each word gets in running text."""
    return list(align_words(tokenizer, words).word_lengths)


def make_windows(
    alignment: WordAlignment, max_len: int, context: int | None = None
) -> list[Window]:
    """Split a sentence into windows of at most ``max_len`` subwords (see module doc).

    ``context`` is the number of subwords of earlier words kept before a window's first
    new word (``0 <= context < max_len``; default ``max_len // 2``).
    """
    if max_len < 1:
        raise PicomamlError(f"window length must be >= 1, got {max_len}")
    if context is None:
        context = max_len // 2
    if not 0 <= context < max_len:
        raise PicomamlError(f"window context must be in [0, {max_len}), got {context}")
    n = alignment.n_words
    if n == 0:
        return []
    ids, starts, lengths = alignment.input_ids, alignment.word_starts, alignment.word_lengths
    ends = [s + k for s, k in zip(starts, lengths, strict=True)]

    windows: list[Window] = []
    first_new = 0  # first word not yet scored
    start = 0  # first word of the current window
    while first_new < n:
        if lengths[first_new] > max_len:
            s = starts[first_new]
            windows.append(Window(ids[s : s + max_len], (0,), (first_new,), first_new))
            first_new += 1
            start = first_new
            continue
        # Move the start right until the first new word fits with at most `context`
        # subwords before it (the first window of the sentence starts at word 0).
        while start < first_new and (
            starts[first_new] - starts[start] > context or ends[first_new] - starts[start] > max_len
        ):
            start += 1
        stop = first_new
        while stop < n and ends[stop] - starts[start] <= max_len:
            stop += 1
        offset = starts[start]
        scored = range(first_new, stop)
        windows.append(
            Window(
                ids[offset : ends[stop - 1]],
                tuple(starts[w] - offset for w in scored),
                tuple(scored),
                start,
            )
        )
        first_new = stop
    return windows

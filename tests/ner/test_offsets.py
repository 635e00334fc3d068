"""Character offsets of ``picomaml tag``'s words in the text as given (no spaCy needed)."""

from __future__ import annotations

import pytest

from picomaml.ner.offsets import entity_offsets, word_offsets
from picomaml.ner.tag_text import TaggedSentence, _drop_invisible, normalize_text, split_words


@pytest.mark.parametrize(
    "line",
    [
        "Pumunta si Maria sa Cebu.",
        "Nin\u0303o  at  Jose",  # decomposed: tag reads the NFC "Niño"
        "U.S. at mag-aral, O'Brien 3.14!",
        "Maria\u200bCebu",  # a zero-width space separates words
        "Ma\u00adria sa\u2060 Cebu",  # soft hyphen and word joiner are dropped
        "\ufeffsi Maria \U0001f44d\U0001f3fd ok",  # BOM, an emoji with a skin tone
        "  \u0301 Maria",  # a combining mark after a space starts no word
    ],
)
def test_each_word_maps_back_to_its_characters(line):
    words = split_words(normalize_text(line))
    spans = word_offsets(line, words)
    assert None not in spans
    starts = [s for s, _ in spans]
    assert starts == sorted(starts)
    for word, (start, end) in zip(words, spans, strict=True):
        assert _drop_invisible(normalize_text(line[start:end])) == word


def test_without_normalisation_offsets_follow_the_raw_text():
    line = "Nin\u0303o at"
    words = split_words(line)
    assert word_offsets(line, words, normalize=False) == [(0, 5), (6, 8)]


def test_unmatched_words_are_none_and_the_rest_still_align():
    assert word_offsets("Maria sa Cebu", ["Maria", "Manila", "sa", "Cebu"]) == [
        (0, 5),
        None,
        (6, 8),
        (9, 13),
    ]


def test_entity_spans_cover_their_words():
    line = "Si  Jose Rizal, taga-Calamba."
    words = split_words(line)
    tags = ["O"] * len(words)
    tags[1], tags[2] = "B-PER", "I-PER"
    entity = {"type": "PER", "start": 1, "end": 3, "text": "Jose Rizal"}
    [(got, span)] = entity_offsets(line, TaggedSentence(1, words, tags, [entity]))
    assert got is entity and line[span[0] : span[1]] == "Jose Rizal"

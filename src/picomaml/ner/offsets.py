"""Character offsets of ``picomaml tag``'s words and entities in the text as given.

``picomaml tag`` reports words and entities by word index: its words come from the line
after NFC normalisation and after invisible characters were dropped
(:mod:`picomaml.ner.tag_text`), so a word is not always a verbatim substring of the input.
Tools that annotate the original text (spaCy's ``doc.ents``) need character offsets into
that text; this module finds them by aligning grapheme clusters: each cluster of the
original line is cleaned the way ``tag`` cleans the whole line (normalised, invisible
characters dropped), and consecutive clusters are matched to each word in order. A word
that cannot be matched gets ``None`` (the caller reports it; nothing is guessed).
"""

from __future__ import annotations

from collections.abc import Sequence

import regex

from picomaml.ner.tag_text import TaggedSentence, _drop_invisible, normalize_text

_CLUSTER_RE = regex.compile(r"\X")
Offsets = tuple[int, int]


def _clean(cluster: str, normalize: bool) -> tuple[int, str]:
    """What ``tag``'s words keep of one cluster of the original line, and how many leading
    characters of the cluster they skip: usually ``(0, cluster)``; nothing of whitespace and
    invisible characters; a mark attached to a space is kept without the space (``tag``'s
    word pattern can start at the mark)."""
    kept = _drop_invisible(normalize_text(cluster) if normalize else cluster)
    return len(cluster) - len(cluster.lstrip()), kept.lstrip()


def word_offsets(line: str, words: Sequence[str], normalize: bool = True) -> list[Offsets | None]:
    """``(start, end)`` of each of ``words`` (``tag``'s words of ``line``) in ``line``.

    Words are matched in order, each to the shortest run of whole clusters that cleans to
    it; whitespace and dropped characters between words are skipped. ``None`` marks a word
    whose characters could not be found; the search then resumes after the last match.
    """
    clusters = []
    for m in _CLUSTER_RE.finditer(line):
        skip, kept = _clean(m.group(), normalize)
        clusters.append((m.start() + skip, m.end(), kept))
    out: list[Offsets | None] = []
    i = 0
    for word in words:
        found = _match(clusters, i, word)
        if found is None:
            out.append(None)
            continue
        start, end, i = found
        out.append((start, end))
    return out


def _match(clusters: list[tuple[int, int, str]], i: int, word: str) -> tuple[int, int, int] | None:
    """Start and end offsets of ``word`` from cluster ``i`` on, and the next cluster index."""
    n = len(clusters)
    while i < n and not clusters[i][2]:
        i += 1
    if i == n:
        return None
    text, j = "", i
    while j < n and len(text) < len(word):
        text += clusters[j][2]
        j += 1
        if text and not word.startswith(text):
            return None
    if text != word:
        return None
    return clusters[i][0], clusters[j - 1][1], j


def entity_offsets(
    line: str, sentence: TaggedSentence, normalize: bool = True
) -> list[tuple[dict, Offsets | None]]:
    """Each entity of ``sentence`` (``tag``'s output for ``line``) with its character span
    in ``line`` (``None`` when a word of it could not be aligned)."""
    words = word_offsets(line, sentence.words, normalize)
    out: list[tuple[dict, Offsets | None]] = []
    for entity in sentence.entities:
        first, last = words[entity["start"]], words[entity["end"] - 1]
        span = None if first is None or last is None else (first[0], last[1])
        out.append((entity, span))
    return out

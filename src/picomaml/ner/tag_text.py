r"""Tag raw text with a fine-tuned run (``picomaml tag``).

Input is one sentence per line, NFC-normalised by default (so a decomposed "Nin\u0303o"
reads as the "Niño" the UNER training data spells). Words are found by :func:`split_words`:
whitespace tokenisation, then punctuation split off as separate words, keeping word-internal
hyphens, apostrophes and dots (``mag-aral``, ``O'Brien``, ``U.S``, ``3.14``) inside the word.
Splitting works on grapheme clusters (``regex``'s ``\X``), never inside one: a base letter
keeps its combining marks whether or not the text was normalised, and an emoji with a skin
tone, a flag or a ZWJ sequence is one token. Invisible characters are never words: a
zero-width space separates words (it is a word boundary in Unicode's UAX #29), other
default-ignorable characters standing alone (BOM, ZWJ, word joiner, soft hyphen, ...) are
dropped. A line that is empty, or holds only whitespace and invisible characters, has no
words: it is skipped (``tag_lines`` reports it) and produces no output. Sentences longer than
the model window are split into overlapping windows internally, so every word gets a tag.

The text output aligns the tag column by display width (:func:`display_width`), measured per
grapheme cluster with the same ``regex`` Unicode tables that split the words.

Input streams (:func:`tag_stream`): lines are read and tagged in bounded batches (at most
:data:`BATCH_LINES` lines and about :data:`BATCH_WORDS` words), so memory stays flat
however long the input, and each batch is written before the next is read. With
interactive input (a terminal, a pipe that pauses) a batch also ends when no further line
is waiting, so a line's tags appear as soon as it is typed.

Entity spans are read from the tags with seqeval's default (conlleval) convention, the same
as the headline evaluation numbers.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import regex

from picomaml.ner.metrics import sentence_entities

# A grapheme cluster whose first character is a letter, digit, mark or underscore: the unit
# of a word. Anything else that is not a space (punctuation, symbols, emoji) is a one-cluster
# token of its own.
_WORD_CLUSTER = r"(?:(?=[\p{L}\p{N}\p{M}_])\X)"
_WORD_RE = regex.compile(rf"{_WORD_CLUSTER}+(?:['’\-.]{_WORD_CLUSTER}+)*|(?:(?!\s)\X)")
_CLUSTER_RE = regex.compile(r"\X")
_INVISIBLE_RE = regex.compile(r"\p{Default_Ignorable_Code_Point}+")
_ZERO_WIDTH_SPACE = "\u200b"
# East Asian Wide/Fullwidth characters and emoji presentation (VS16 included) take two cells.
_WIDE_RE = regex.compile(
    r"[\p{East_Asian_Width=Wide}\p{East_Asian_Width=Fullwidth}\p{Emoji_Presentation}\uFE0F]"
)
_ZERO_WIDTH_RE = regex.compile(r"[\p{M}\p{Default_Ignorable_Code_Point}\p{Cc}]+")

#: Most lines tagged together (one batch of the stream).
BATCH_LINES = 256
#: A batch ends once it holds this many words (a longer line is a batch of its own).
BATCH_WORDS = 8192


def normalize_text(line: str) -> str:
    """Unicode NFC: composed letters, as UNER's text (and so the trained model) spells them."""
    return unicodedata.normalize("NFC", line)


def _drop_invisible(line: str) -> str:
    """A zero-width space becomes a space; other invisible characters without a base go.

    Invisible characters that extend a visible base (the ZWJ of an emoji sequence, a
    variation selector, a ZWNJ inside a Persian word) belong to its cluster and stay; those
    that stand alone or follow a space (where Unicode attaches them to the space) go.
    """
    if _ZERO_WIDTH_SPACE not in line and not _INVISIBLE_RE.search(line):
        return line  # the common case, without a pass over every cluster
    kept = []
    for cluster in _CLUSTER_RE.findall(line.replace(_ZERO_WIDTH_SPACE, " ")):
        if cluster[0].isspace() or _INVISIBLE_RE.match(cluster):
            cluster = _INVISIBLE_RE.sub("", cluster)
        kept.append(cluster)
    return "".join(kept)


def split_words(line: str) -> list[str]:
    """Grapheme-aware whitespace tokenisation with punctuation split off (module docstring)."""
    return _WORD_RE.findall(_drop_invisible(line))


def display_width(text: str) -> int:
    """Terminal cells ``text`` takes: 2 per wide or emoji cluster, 0 per invisible one, else 1.

    Measured per grapheme cluster, so a skin-tone emoji or a ZWJ family counts 2 (not the sum
    of its code points) and a letter with combining marks counts 1.
    """
    if text.isascii() and text.isprintable():
        return len(text)
    width = 0
    for cluster in _CLUSTER_RE.findall(text):
        if _WIDE_RE.search(cluster):
            width += 2
        elif not _ZERO_WIDTH_RE.fullmatch(cluster):
            width += 1
    return width


@dataclass
class TaggedSentence:
    """Words of one input line with their tags and entity spans (``end`` exclusive)."""

    line: int
    words: list[str]
    tags: list[str]
    entities: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        """The ``--json`` record of this sentence."""
        return {
            "line": self.line,
            "words": self.words,
            "tags": self.tags,
            "entities": self.entities,
        }

    def to_text(self) -> str:
        """Human format: ``word  tag`` lines (tags aligned by display width), then the entities."""
        widths = [display_width(w) for w in self.words]
        column = max(widths, default=0)
        rows = [
            f"{w}{' ' * (column - n)}  {t}"
            for w, n, t in zip(self.words, widths, self.tags, strict=True)
        ]
        spans = "; ".join(
            f'{e["type"]} "{e["text"]}" [{e["start"]}:{e["end"]}]' for e in self.entities
        )
        rows.append(f"entities: {spans or '(none)'}")
        return "\n".join(rows)


def entity_spans(words: Sequence[str], tags: Sequence[str]) -> list[dict]:
    """Entity spans ``{type, start, end (exclusive), text}`` in reading order."""
    spans = sorted(sentence_entities(list(tags), "default"), key=lambda e: (e[1], e[2]))
    return [
        {"type": t, "start": s, "end": e + 1, "text": " ".join(words[s : e + 1])}
        for t, s, e in spans
    ]


@dataclass
class TagResult:
    """Tagged sentences plus the 1-based numbers of input lines skipped as empty."""

    sentences: list[TaggedSentence]
    skipped_lines: list[int]


def _numbered(lines: Iterable[str], normalize: bool) -> Iterator[tuple[int, list[str]]]:
    for i, line in enumerate(lines, 1):
        yield i, split_words(normalize_text(line) if normalize else line)


def _batches(
    numbered: Iterator[tuple[int, list[str]]], more_ready: Callable[[], bool] | None
) -> Iterator[list[tuple[int, list[str]]]]:
    """Bounded batches of numbered lines; with ``more_ready``, a batch also ends when it
    says no further line is waiting (interactive input)."""
    batch: list[tuple[int, list[str]]] = []
    words = 0
    for item in numbered:
        batch.append(item)
        words += len(item[1])
        if (
            len(batch) >= BATCH_LINES
            or words >= BATCH_WORDS
            or (more_ready is not None and not more_ready())
        ):
            yield batch
            batch, words = [], 0
    if batch:
        yield batch


def tag_stream(
    loaded,  # evaluate.LoadedRun
    lines: Iterable[str],
    normalize: bool = True,
    more_ready: Callable[[], bool] | None = None,
) -> Iterator[TagResult]:
    """Tag ``lines`` (one sentence per line) batch by batch (module docstring): each
    :class:`TagResult` holds one batch's sentences and skipped line numbers, and is yielded
    before the next batch is read. ``more_ready()`` tells whether another line is waiting
    (None: read full batches)."""
    for batch in _batches(_numbered(lines, normalize), more_ready):
        skipped = [i for i, words in batch if not words]
        todo = [(i, words) for i, words in batch if words]
        tags = loaded.predict([words for _, words in todo]) if todo else []
        sentences = [
            TaggedSentence(i, words, t, entity_spans(words, t))
            for (i, words), t in zip(todo, tags, strict=True)
        ]
        yield TagResult(sentences, skipped)


def tag_lines(
    loaded,  # evaluate.LoadedRun
    lines: Iterable[str],
    normalize: bool = True,
) -> TagResult:
    """Tag each non-empty line (one sentence per line); empty lines are skipped and reported.

    ``normalize=False`` keeps the text's own Unicode form (``tag --no-normalize``). All
    results at once; :func:`tag_stream` gives them batch by batch.
    """
    out = TagResult([], [])
    for part in tag_stream(loaded, lines, normalize):
        out.sentences += part.sentences
        out.skipped_lines += part.skipped_lines
    return out


def format_result(result: TagResult, as_json: bool) -> str:
    """``--json``: one JSON object per sentence (JSON lines); otherwise blocks per sentence."""
    if as_json:
        return "\n".join(json.dumps(s.to_json(), ensure_ascii=False) for s in result.sentences)
    return "\n\n".join(s.to_text() for s in result.sentences)

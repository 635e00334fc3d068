"""Tag raw text with a fine-tuned run (``picomaml tag``).

Input is one sentence per line. Words are found by :func:`split_words`: whitespace
tokenisation, then punctuation split off as separate words, keeping word-internal hyphens,
apostrophes and dots (``mag-aral``, ``O'Brien``, ``U.S``, ``3.14``) inside the word. A line
that is empty or only whitespace has no words: it is skipped (``tag_lines`` reports it) and
produces no output. Sentences longer than the model window are split into overlapping
windows internally, so every word gets a tag.

Entity spans are read from the tags with seqeval's default (conlleval) convention, the same
as the headline evaluation numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from picomaml.ner.metrics import sentence_entities

_WORD_RE = re.compile(r"\w+(?:['’\-.]\w+)*|[^\w\s]", re.UNICODE)


def split_words(line: str) -> list[str]:
    """Whitespace tokenisation with punctuation split off (see the module docstring)."""
    return _WORD_RE.findall(line)


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
        """Human format: ``word<TAB>tag`` lines, then one line listing the entity spans."""
        width = max((len(w) for w in self.words), default=0)
        rows = [f"{w.ljust(width)}  {t}" for w, t in zip(self.words, self.tags, strict=True)]
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


def tag_lines(loaded, lines: Iterable[str]) -> TagResult:  # loaded: evaluate.LoadedRun
    """Tag each non-empty line (one sentence per line); empty lines are skipped and reported."""
    numbered = [(i, split_words(line)) for i, line in enumerate(lines, 1)]
    skipped = [i for i, words in numbered if not words]
    todo = [(i, words) for i, words in numbered if words]
    tags = loaded.predict([words for _, words in todo]) if todo else []
    sentences = [
        TaggedSentence(i, words, t, entity_spans(words, t))
        for (i, words), t in zip(todo, tags, strict=True)
    ]
    return TagResult(sentences, skipped)


def format_result(result: TagResult, as_json: bool) -> str:
    """``--json``: one JSON object per sentence (JSON lines); otherwise blocks per sentence."""
    if as_json:
        return "\n".join(json.dumps(s.to_json(), ensure_ascii=False) for s in result.sentences)
    return "\n\n".join(s.to_text() for s in result.sentences)

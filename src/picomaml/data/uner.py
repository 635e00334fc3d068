"""Reader for Universal NER ``.iob2`` files.

Format (one token per line, tab-separated): ``index  token  tag  [misc  annotator]``;
``# key = value`` comment lines (``sent_id``, ``text``, ``newdoc id``, ...) before a
sentence; a blank line ends a sentence.

What the reader accepts, and what it changes (every change is counted in
:class:`ReadReport`, never silent):

* tags outside PER/LOC/ORG (``B-OTH``, a stray ``B-O``, ...) become ``O``;
* an ``I-X`` that does not continue an ``X`` span becomes ``B-X`` (conlleval's reading);
* a UTF-8 byte-order mark and CRLF line ends are tolerated (and flagged in the report).

Everything else malformed raises :class:`PicomamlError` naming the file and line: a line
with fewer than 3 or more than 5 columns, an index that is not an integer or not the
next position in the sentence, an empty token or tag, a tag that is not ``O``/``B-X``/
``I-X``, bytes that are not UTF-8, and a file with no sentence at all.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from picomaml.data.labels import normalize_tags
from picomaml.errors import PicomamlError


@dataclass
class Sentence:
    """One annotated sentence: parallel ``tokens`` and IOB2 ``tags`` over :data:`LABELS`."""

    tokens: list[str]
    tags: list[str]
    sent_id: str
    text: str | None = None

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class ReadReport:
    """What the reader saw and changed in one or more files."""

    files: list[str] = field(default_factory=list)
    n_sentences: int = 0
    n_tokens: int = 0
    mapped_to_o: dict[str, int] = field(default_factory=dict)
    n_repaired: int = 0
    bom_files: list[str] = field(default_factory=list)
    crlf_files: list[str] = field(default_factory=list)

    @property
    def n_mapped_to_o(self) -> int:
        """Tags outside PER/LOC/ORG read as ``O``."""
        return sum(self.mapped_to_o.values())

    def merge(self, other: ReadReport) -> ReadReport:
        """The report of both reads together (used for concatenated datasets such as ``all``)."""
        mapped = Counter(self.mapped_to_o)
        mapped.update(other.mapped_to_o)
        return ReadReport(
            files=[*self.files, *other.files],
            n_sentences=self.n_sentences + other.n_sentences,
            n_tokens=self.n_tokens + other.n_tokens,
            mapped_to_o=dict(sorted(mapped.items())),
            n_repaired=self.n_repaired + other.n_repaired,
            bom_files=[*self.bom_files, *other.bom_files],
            crlf_files=[*self.crlf_files, *other.crlf_files],
        )

    def changes(self) -> str | None:
        """What the reader changed, in words (None when it changed nothing): the console line
        a stage prints per file, so no change to the data goes unseen."""
        parts = []
        if self.mapped_to_o:
            mapped = ", ".join(f"{k} {v}" for k, v in self.mapped_to_o.items())
            parts.append(f"tags read as O: {mapped}")
        if self.n_repaired:
            parts.append(f"stray I- read as B-: {self.n_repaired}")
        if self.bom_files:
            parts.append("UTF-8 byte-order mark dropped")
        if self.crlf_files:
            parts.append("CRLF line ends read as LF")
        return "; ".join(parts) or None

    def summary(self) -> str:
        """One line for logs: what was remapped or repaired."""
        mapped = ", ".join(f"{k}: {v}" for k, v in self.mapped_to_o.items()) or "none"
        return (
            f"{self.n_sentences} sentences, {self.n_tokens} tokens; tags read as O: {mapped}; "
            f"I- tags repaired to B-: {self.n_repaired}"
        )


def _valid_tag_form(tag: str) -> bool:
    if tag == "O":
        return True
    prefix, sep, etype = tag.partition("-")
    return bool(sep) and prefix in ("B", "I") and bool(etype)


#: Files parsed in this process, by path and content digest: a study grid reads the same
#: source split in every cell. Callers get copies, so nothing they change reaches the cache.
_PARSED: OrderedDict[tuple[str, bytes], tuple[list[Sentence], ReadReport]] = OrderedDict()
_PARSED_MAX = 8


def read_iob2(path: str | Path) -> tuple[list[Sentence], ReadReport]:
    """Read one ``.iob2`` file into sentences whose tags are all in :data:`LABELS`.

    A file read before in this process with the same bytes is not parsed again.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PicomamlError(f"cannot read {path}: {exc.strerror or exc}") from exc
    key = (str(path), hashlib.blake2b(raw, digest_size=16).digest())
    if key not in _PARSED:
        _PARSED[key] = _parse_iob2(path, raw)
        while len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)
    _PARSED.move_to_end(key)
    sentences, report = _PARSED[key]
    copies = [Sentence(list(s.tokens), list(s.tags), s.sent_id, s.text) for s in sentences]
    return copies, dataclasses.replace(
        report,
        files=list(report.files),
        mapped_to_o=dict(report.mapped_to_o),
        bom_files=list(report.bom_files),
        crlf_files=list(report.crlf_files),
    )


def _parse_iob2(path: Path, raw: bytes) -> tuple[list[Sentence], ReadReport]:
    report = ReadReport(files=[str(path)])
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
        report.bom_files.append(str(path))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PicomamlError(
            f"{path}:{line}: bytes that are not UTF-8 ({raw[exc.start : exc.start + 4]!r}); "
            "UNER files must be UTF-8"
        ) from exc
    if "\r\n" in text:
        report.crlf_files.append(str(path))

    sentences: list[Sentence] = []
    mapped: Counter[str] = Counter()
    tokens: list[str] = []
    raw_tags: list[str] = []
    meta: dict[str, str] = {}
    header_line = 0

    def finish() -> None:
        tags, n_mapped, n_rep = normalize_tags(raw_tags)
        if n_mapped:
            mapped.update(t for t, n in zip(raw_tags, tags, strict=True) if n == "O" and t != "O")
        report.n_repaired += n_rep
        sent_id = meta.get("sent_id") or f"{path.name}#{len(sentences) + 1}"
        sentences.append(Sentence(list(tokens), tags, sent_id, meta.get("text")))

    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            if tokens:
                finish()
            elif meta:
                raise PicomamlError(
                    f"{path}:{header_line}: comment lines with no token lines after them"
                )
            tokens, raw_tags, meta = [], [], {}
            continue
        if line.startswith("#") and not tokens:
            if not meta:
                header_line = lineno
            key, sep, value = line[1:].partition("=")
            meta[key.strip() if sep else line[1:].strip()] = value.strip() if sep else ""
            continue
        cols = line.split("\t")
        if not 3 <= len(cols) <= 5:
            raise PicomamlError(
                f"{path}:{lineno}: expected 3 to 5 tab-separated columns "
                f"(index, token, tag, [misc, annotator]), got {len(cols)}: {line[:80]!r}"
            )
        index, token, tag = cols[0].strip(), cols[1], cols[2].strip()
        if not (index.isascii() and index.isdigit()):
            raise PicomamlError(f"{path}:{lineno}: index {index!r} is not an integer")
        if int(index) != len(tokens) + 1:
            raise PicomamlError(
                f"{path}:{lineno}: index {index} out of order, expected {len(tokens) + 1} "
                "(a missing blank line between sentences?)"
            )
        if not token.strip():
            raise PicomamlError(f"{path}:{lineno}: empty token")
        if not tag:
            raise PicomamlError(f"{path}:{lineno}: missing tag for token {token!r}")
        if not _valid_tag_form(tag):
            raise PicomamlError(
                f"{path}:{lineno}: tag {tag!r} is not IOB2 (expected O, B-TYPE or I-TYPE)"
            )
        if not tokens and not meta:
            header_line = lineno
        tokens.append(token)
        raw_tags.append(tag)
    if tokens:
        finish()
    elif meta:
        raise PicomamlError(f"{path}:{header_line}: comment lines with no token lines after them")
    if not sentences:
        raise PicomamlError(f"{path}: no sentences (empty file?)")
    report.n_sentences = len(sentences)
    report.n_tokens = sum(len(s) for s in sentences)
    report.mapped_to_o = dict(sorted(mapped.items()))
    return sentences, report

"""Name pools for the controlled name substitution (``ablations.names``).

Two pools ship with the package (``picomaml/data/assets/``; provenance in its README):

* ``names-frequent-english-mini.tsv``: person names frequent in the pretraining corpus,
  written by ``picomaml data names frequent``. Candidates are the first word (given name)
  and last word (surname) of the multi-word PER spans of the English UNER training set
  (``en_ewt``), so every entry is a word annotators marked as a person's name; kept are
  capitalised alphabetic words that annotators tag PER in most of their ``en_ewt``
  occurrences, that are mostly capitalised in the corpus and that are no case particle;
  ranked by their count in the corpus.
* ``names-unseen-filipino.tsv``: Filipino given names and surnames compiled by the
  maintainers, each checked absent from the corpus and from every UNER source split by
  ``picomaml data names check FILE --absent``.

A pool file is UTF-8 text, one entry per line, ``kind<TAB>name[<TAB>count]`` with ``kind``
``given`` or ``surname`` (a name may have several words); ``#`` lines are comments.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from picomaml.data.labels import extract_spans
from picomaml.data.particles import PARTICLES
from picomaml.data.transforms import NamePool
from picomaml.data.uner import Sentence
from picomaml.errors import PicomamlError

POOL_KINDS: tuple[str, ...] = ("given", "surname")
#: The pools that ship with the package, by the name ``ablations.names.pools`` uses.
SHIPPED_POOLS: dict[str, str] = {
    "frequent": "names-frequent-english-mini.tsv",
    "unseen": "names-unseen-filipino.tsv",
}
_WORD = re.compile(r"[^\W\d_]+")
_NAME = re.compile(r"[A-Z][a-z]{2,}")


def shipped_pool(name: str) -> Path:
    """Path of a pool file shipped with the package."""
    return Path(str(resources.files("picomaml.data") / "assets" / SHIPPED_POOLS[name]))


def parse_pool(text: str, name: str, where: str) -> NamePool:
    """A pool from the text of a pool file; a malformed line or an empty pool is an error
    naming ``where`` (the file) and the line."""
    given: list[str] = []
    surnames: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) not in (2, 3) or cols[0] not in POOL_KINDS or not cols[1].strip():
            raise PicomamlError(
                f"{where}:{lineno}: expected 'given|surname<TAB>name[<TAB>count]', got {line!r}"
            )
        (given if cols[0] == "given" else surnames).append(" ".join(cols[1].split()))
    if not given and not surnames:
        raise PicomamlError(f"{where}: the name pool is empty (no given names, no surnames)")
    try:
        return NamePool(name, tuple(dict.fromkeys(given)), tuple(dict.fromkeys(surnames)))
    except PicomamlError as exc:
        raise PicomamlError(f"{where}: {exc}") from exc


def read_pool(path: str | Path, name: str) -> NamePool:
    """Read and check a pool file (see the module docstring for the format)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PicomamlError(f"name pool file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PicomamlError(f"{path}: cannot read the name pool ({exc})") from exc
    return parse_pool(text, name, str(path))


def word_counts(documents: Iterable[str]) -> Counter[str]:
    """Occurrences of every alphabetic word (case kept) in ``documents``."""
    counts: Counter[str] = Counter()
    for doc in documents:
        counts.update(_WORD.findall(doc))
    return counts


def casefolded(counts: Counter[str]) -> Counter[str]:
    """``counts`` with words of any case merged (``John`` + ``JOHN`` + ``john``)."""
    out: Counter[str] = Counter()
    for word, n in counts.items():
        out[word.casefold()] += n
    return out


@dataclass
class Candidates:
    """Person-name candidates from annotated sentences: how often each word is the first
    (given) or last (surname) word of a multi-word PER span, and how often it occurs at
    all and inside a PER span."""

    given: Counter[str]
    surnames: Counter[str]
    in_per: Counter[str]
    total: Counter[str]

    def per_share(self, word: str) -> float:
        """Share of the word's occurrences that lie inside a PER span."""
        return self.in_per[word] / self.total[word] if self.total[word] else 0.0


def name_candidates(sentences: Iterable[Sentence]) -> Candidates:
    """Given-name and surname candidates of gold PER spans of two or more words."""
    out = Candidates(Counter(), Counter(), Counter(), Counter())
    for s in sentences:
        out.total.update(s.tokens)
        for etype, start, end in extract_spans(s.tags):
            if etype != "PER":
                continue
            out.in_per.update(s.tokens[start:end])
            if end - start >= 2:
                out.given[s.tokens[start]] += 1
                out.surnames[s.tokens[end - 1]] += 1
    return out


def frequent_names(
    candidates: Candidates, counts: Counter[str], top: int, min_count: int
) -> list[tuple[str, str, int]]:
    """The ``top`` most frequent candidates of each kind as ``(kind, name, corpus count)``.

    Kept: a capitalised alphabetic word of three letters or more, tagged PER in at least
    half of its annotated occurrences (drops ``York`` of *New York*), capitalised in at
    least 90% of its corpus occurrences (drops ``Will``), seen ``min_count`` times or more,
    and not a case particle of :mod:`picomaml.data.particles` (drops ``Kay``). Ties are
    broken alphabetically, so the pool is a function of its inputs.
    """
    folded = casefolded(counts)
    particles = {w for ps in PARTICLES.values() for p in ps for w in p.split()}
    out: list[tuple[str, str, int]] = []
    for kind, pool in (("given", candidates.given), ("surname", candidates.surnames)):
        keep = [
            w
            for w in pool
            if _NAME.fullmatch(w)
            and candidates.per_share(w) >= 0.5
            and counts[w] >= min_count
            and counts[w] >= 0.9 * folded[w.casefold()]
            and w.casefold() not in particles
        ]
        keep.sort(key=lambda w: (-counts[w], w))
        out += [(kind, w, counts[w]) for w in keep[:top]]
    return out


def format_pool(entries: Sequence[tuple[str, str, int]], header: Sequence[str]) -> str:
    """The text of a pool file: ``# `` header lines, then ``kind<TAB>name<TAB>count``."""
    lines = [f"# {h}" if h else "#" for h in header]
    lines += [f"{kind}\t{name}\t{count}" for kind, name, count in entries]
    return "\n".join(lines) + "\n"


def pool_occurrences(pool: NamePool, counts: Counter[str]) -> list[tuple[str, str, int]]:
    """``(kind, name, occurrences)`` of every entry in casefolded ``counts``; a name of
    several words counts its rarest word."""
    out = []
    for kind, names in (("given", pool.given), ("surname", pool.surnames)):
        for name in names:
            out.append((kind, name, min(counts[w.casefold()] for w in name.split())))
    return out

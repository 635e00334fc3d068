"""An English pretraining corpus anyone can rebuild: public-domain NLTK corpora as JSONL.

The offline ``corpus/english-mini`` stand-in for Dolma cannot be downloaded, so on a fresh
machine ``picomaml data download`` builds one with the same layout and shape from three
NLTK data packages, each listed as *public domain* in the NLTK data index and fetched over
HTTPS from ``raw.githubusercontent.com/nltk/nltk_data`` (no NLTK install needed):

* ``gutenberg``: 18 Project Gutenberg books (Austen, Blake, Carroll, Chesterton, Melville,
  Milton, Shakespeare, Whitman, the King James Bible, ...);
* ``state_union``: US State of the Union addresses since 1945;
* ``inaugural``: US presidential inaugural addresses.

The NLTK index lists them at 4,251,829 + 808,757 + 346,476 bytes zipped (5.4 MB) and
14.7 MB unzipped. Unlike the offline english-mini (Brown, MASC, ABC, ...), this corpus is
older, more literary English, so pretraining numbers are not comparable between the two.

Turning files into documents is pure and deterministic: line ends normalised, each
paragraph (text between blank lines) joined into one line, consecutive paragraphs grouped
into documents of at least :data:`DOC_CHARS` characters (a file's last group may be
shorter), documents shuffled with a fixed seed so any prefix mixes all sources, and every
:data:`VALID_EVERY`-th document held out as the valid split (2 %).
"""

from __future__ import annotations

import random
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from picomaml.errors import PicomamlError

NLTK_BASE_URL = "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora"
PACKAGES: tuple[str, ...] = ("gutenberg", "state_union", "inaugural")
DOC_CHARS = 4000
VALID_EVERY = 50
SEED = 0
CORPUS_DIR = "corpus/english-mini"
ZIP_DIR = "corpus/nltk"


@dataclass(frozen=True)
class Document:
    """One JSONL line of the corpus: ``{"text": ..., "source": ...}``."""

    text: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return {"text": self.text, "source": self.source}


def decode(data: bytes) -> str:
    """UTF-8, else Latin-1 (some NLTK files predate UTF-8; Latin-1 never fails)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def paragraphs(text: str) -> list[str]:
    """Paragraphs (split at blank lines), each joined into one line of single spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for block in re.split(r"\n\s*\n", text):
        line = " ".join(block.split())
        if line:
            out.append(line)
    return out


def group_paragraphs(paras: Iterable[str], min_chars: int = DOC_CHARS) -> list[str]:
    """Consecutive paragraphs joined (blank line between) until a group has ``min_chars``."""
    docs: list[str] = []
    current: list[str] = []
    size = 0
    for para in paras:
        current.append(para)
        size += len(para)
        if size >= min_chars:
            docs.append("\n\n".join(current))
            current, size = [], 0
    if current:
        docs.append("\n\n".join(current))
    return docs


def zip_texts(archive: zipfile.ZipFile, package: str) -> list[tuple[str, str]]:
    """``(source, text)`` of every ``<package>/*.txt`` member, in name order."""
    out = []
    for name in sorted(archive.namelist()):
        member = PurePosixPath(name)
        if member.parts[:1] != (package,) or member.suffix != ".txt":
            continue
        if member.name.upper().startswith("README"):
            continue
        out.append((f"{package}/{member.name}", decode(archive.read(name))))
    if not out:
        raise PicomamlError(f"{package}.zip has no {package}/*.txt files (not an NLTK corpus zip?)")
    return out


def build_documents(texts: Iterable[tuple[str, str]], min_chars: int = DOC_CHARS) -> list[Document]:
    """Documents of every ``(source, text)`` file, in file order."""
    return [
        Document(doc, source)
        for source, text in texts
        for doc in group_paragraphs(paragraphs(text), min_chars)
    ]


def split_documents(
    docs: list[Document], seed: int = SEED, valid_every: int = VALID_EVERY
) -> tuple[list[Document], list[Document]]:
    """Shuffle with ``seed``; every ``valid_every``-th document goes to valid, the rest to train."""
    if len(docs) < valid_every:
        raise PicomamlError(
            f"only {len(docs)} documents: too few to hold out every {valid_every}th as valid"
        )
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    train = [docs[i] for k, i in enumerate(order) if k % valid_every != valid_every - 1]
    valid = [docs[i] for k, i in enumerate(order) if k % valid_every == valid_every - 1]
    return train, valid

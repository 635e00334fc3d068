"""What a fine-tuning run trains on beyond the source's first N sentences: balanced
resampling (``sampling: balanced``) and extra annotated sentences (``extra_train``).

Kept apart from :mod:`picomaml.ner.finetune` so the training loop does not change with the
ablations: :func:`training_sentences` returns the final sentence list, what it did in
words for ``run.json``, and the record written to ``sampling.json``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from picomaml.data.sampling import balanced_resample, span_counts
from picomaml.data.uner import Sentence, read_iob2
from picomaml.errors import PicomamlError


def read_extra_train(path: str | Path) -> tuple[list[Sentence], dict[str, Any]]:
    """The sentences of an ``extra_train`` IOB2 file and what was read (file, SHA-256,
    sentences, spans per type); a missing or malformed file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise PicomamlError(f"extra_train: file not found: {path}")
    sentences, report = read_iob2(path)
    info = {
        "file": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "sent_ids": [s.sent_id for s in sentences],
        **span_counts([s.tags for s in sentences], range(len(sentences))),  # type: ignore[arg-type]
        "read_report": report.changes(),
    }
    return sentences, info


def training_sentences(
    source: list[Sentence],
    sampling: str,
    seed: int,
    extra: list[Sentence] | None = None,
) -> tuple[list[Sentence], dict[str, Any] | None]:
    """The training list: ``source`` (resampled when ``sampling`` is ``balanced``) followed
    by ``extra``; and the ``sampling.json`` record (None for natural sampling).

    The extra sentences come last and are never resampled, so a cached feature pass over
    the source part stays valid for every few-shot draw.
    """
    record = None
    if sampling == "balanced":
        result = balanced_resample([s.tags for s in source], seed)
        source = [source[i] for i in result.indices]
        record = result.to_dict()
    elif sampling != "natural":
        raise PicomamlError(f"sampling: expected 'natural' or 'balanced', got {sampling!r}")
    return source + list(extra or []), record

"""The CRF tagger over word features, and the helpers every NER stage shares.

Fine-tuning, evaluation, ``picomaml tag`` and the head-cache benchmark all build or load the
same head, decode the same way and read sentences the same way; this module is that common
ground, so none of them reaches into another's private helpers.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor
from tqdm.auto import tqdm

from picomaml.data.labels import LABEL2ID, LABELS
from picomaml.data.registry import ALL, SOURCES, load_split
from picomaml.data.uner import ReadReport, Sentence
from picomaml.errors import PicomamlError
from picomaml.layout import CRF_HEAD
from picomaml.ner.crf import CRFTagger, iob2_constraints
from picomaml.ner.features import pad_batch

#: Progress messages of a stage (``None`` where a caller passes no logger: silence).
Logger = Callable[[str], None]


def stderr_log(msg: str) -> None:
    """The default :data:`Logger`: one line on stderr, flushed (progress, not results)."""
    print(msg, file=sys.stderr, flush=True)


@contextmanager
def progress_bar(
    desc: str, total: int, enabled: bool | None, unit: str = "window"
) -> Iterator[Callable[[int], object] | None]:
    """A tqdm bar on stderr for long feature passes; yields its ``update`` (None when off).

    ``enabled=None`` shows it only on a terminal. The bar is removed when done (the stage's
    own summary line follows) and closed when the block fails, so nothing prints after the
    CLI's last line.
    """
    if enabled is False:
        yield None
        return

    disable = None if enabled is None else not enabled
    with tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
        disable=disable,
    ) as bar:
        yield bar.update


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an unavailable explicit device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PicomamlError(f"device: {name!r} requested but CUDA is not available")
    return torch.device(name)


def build_tagger(d_model: int, constraints: bool, dropout: float = 0.0) -> CRFTagger:
    """The CRF head over the UNER label set (IOB2 constraints only when asked)."""
    allowed = iob2_constraints(list(LABELS)) if constraints else None
    return CRFTagger(d_model, len(LABELS), constraints=allowed, dropout=dropout)


def load_head(run_dir: Path, d_model: int, constraints: bool) -> CRFTagger:
    """The trained CRF head of a run (the file must exist)."""
    path = run_dir / CRF_HEAD
    if not path.is_file():
        raise PicomamlError(f"run dir {run_dir} is missing {CRF_HEAD}")
    tagger = build_tagger(d_model, constraints)
    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for bad files
        raise PicomamlError(f"{path}: cannot read safetensors file ({exc})") from exc
    try:
        tagger.load_state_dict(state)
    except RuntimeError as exc:  # torch's message spans lines; the CLI prints one
        detail = " ".join(str(exc).split())
        raise PicomamlError(
            f"{path}: does not fit a CRF head with d_model {d_model} ({detail})"
        ) from exc
    return tagger


def load_sentences(
    code: str, split: str, data_root: Path, limit: int = 0, log: Logger | None = None
) -> tuple[list[Sentence], dict[str, Any]]:
    """Sentences of one split (the first ``limit`` when > 0) and what was read.

    The info's ``read_report`` counts tags the reader mapped to ``O`` (outside PER/LOC/ORG)
    and repaired spans, so a run can say what it trained on; ``log`` gets one line per file
    the reader changed anything in (``all`` reads nine files).
    """
    sentences: list[Sentence] = []
    report = ReadReport()
    for part in SOURCES if code == ALL else (code,):
        got, rep = load_split(part, split, data_root)
        sentences.extend(got)
        report = report.merge(rep)
        changes = rep.changes()
        if log is not None and changes:
            log(f"data {part} {split} ({', '.join(rep.files)}): {changes}")
    available = len(sentences)
    if limit > 0:
        sentences = sentences[:limit]
    info = {
        "code": code,
        "split": split,
        "n_sentences": len(sentences),
        "n_sentences_available": available,
        "limit": limit,
        "read_report": json.loads(json.dumps(dataclasses.asdict(report), default=str)),
    }
    return sentences, info


def tag_ids(sentences: Sequence[Sentence]) -> list[list[int]]:
    """Gold tag ids; a tag outside the label set here is a reader bug, not user data."""
    out = []
    for sent in sentences:
        try:
            out.append([LABEL2ID[t] for t in sent.tags])
        except KeyError as exc:
            raise PicomamlError(
                f"sentence {getattr(sent, 'sent_id', '?')}: tag {exc} is not in the label set"
            ) from exc
    return out


def ids_to_tags(paths: Sequence[Sequence[int]]) -> list[list[str]]:
    """Tag strings from tag ids."""
    return [[LABELS[i] for i in path] for path in paths]


def decode_features(
    tagger: CRFTagger, features: Sequence[Tensor], batch_size: int = 64
) -> list[list[int]]:
    """Viterbi tag ids for every sentence (batched; empty sentences give empty paths)."""
    device = next(tagger.parameters()).device
    out: list[list[int]] = []
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            chunk = [f.to(device) for f in features[start : start + batch_size]]
            feats, mask, _ = pad_batch(chunk)
            out.extend(tagger.decode(feats, mask))
    return out


def gold_marginals(
    tagger: CRFTagger,
    features: Sequence[Tensor],
    tags: Sequence[Sequence[int]],
    batch_size: int = 64,
) -> list[list[float]]:
    """CRF marginal probability of each word's gold tag, per sentence (token confidence)."""
    device = next(tagger.parameters()).device
    out: list[list[float]] = []
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            chunk = [f.to(device) for f in features[start : start + batch_size]]
            feats, mask, gold = pad_batch(chunk, tags[start : start + batch_size])
            probs = tagger.marginals(feats, mask).gather(2, gold.unsqueeze(-1)).squeeze(-1)
            for b, f in enumerate(chunk):
                out.append([float(p) for p in probs[b, : f.shape[0]].tolist()])
    return out

"""Hand-made records for the analysis unit tests: cells with chosen scores, so every
expected table can be worked out by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from picomaml.data.registry import TARGETS
from picomaml.study.analyses.tables import Context
from picomaml.study.config import AnalysisSpec
from picomaml.study.records import CellRecord, Sentence, StudyData


def scores(f1: float, per_type: dict[str, float] | None = None) -> dict[str, Any]:
    """One dataset's entry of results.json: micro-F1 and per-type F1 (seqeval default)."""
    types = {t: {"f1": v} for t, v in (per_type or {}).items()}
    return {"default": {"micro": {"f1": f1}, "per_type": types}}


def cell(
    variant: str,
    size: str = "tiny",
    regime: str = "head",
    source: str = "sk_snk",
    seed: int = 0,
    *,
    f1: float | tuple[float, ...] | dict[str, float] | None = None,
    kind: str = "main",
    step: int | None = None,
    **extra: Any,
) -> CellRecord:
    """A finished cell; ``f1`` is one score for every target, one per target (in TARGETS
    order) or a mapping of dataset code to score."""
    if isinstance(f1, float):
        f1 = dict.fromkeys(TARGETS, f1)
    elif isinstance(f1, tuple):
        f1 = dict(zip(TARGETS, f1, strict=True))
    name = f"{variant}-{size}-{regime}-{source}-s{seed}" + (f"-step{step}" if step else "")
    return CellRecord(
        cell_id=name,
        rel=f"cells/{name}",
        kind=kind,
        variant=variant,
        size=size,
        regime=regime,
        source=source,
        seed=seed,
        step=step,
        run=extra.pop("run", {}),
        datasets=extra.pop("datasets", {code: scores(v) for code, v in (f1 or {}).items()}),
        **extra,
    )


def sentence(
    words: str, gold: str, pred: str | None = None, p_gold: list[float] | None = None
) -> Sentence:
    """A scored sentence from space-separated words and tags (pred defaults to gold)."""
    return Sentence(words.split(), gold.split(), (pred or gold).split(), p_gold)


def study(tmp_path: Path, cells: list[CellRecord]) -> StudyData:
    return StudyData(tmp_path, {}, cells, [], [])


def context(tmp_path: Path, **spec: Any) -> Context:
    return Context(tmp_path, AnalysisSpec(**spec))

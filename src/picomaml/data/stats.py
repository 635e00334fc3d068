"""Dataset statistics: sentences, tokens and entity spans per type (paper Table 4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from picomaml.data.labels import ENTITY_TYPES, extract_spans
from picomaml.data.registry import load_split
from picomaml.data.uner import ReadReport, Sentence


@dataclass
class TypeStats:
    """Spans of one entity type and how many of them are a single word."""

    spans: int = 0
    single_word: int = 0

    @property
    def single_word_share(self) -> float | None:
        """Fraction of spans that are one word (``None`` when there are no spans)."""
        return self.single_word / self.spans if self.spans else None


@dataclass
class SplitStats:
    """Statistics of one split, with what the reader remapped or repaired."""

    dataset: str
    split: str
    sentences: int
    tokens: int
    types: dict[str, TypeStats] = field(default_factory=dict)
    mapped_to_o: dict[str, int] = field(default_factory=dict)
    repaired: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; shares are fractions in [0, 1]."""
        out = asdict(self)
        for name, ts in self.types.items():
            out["types"][name]["single_word_share"] = ts.single_word_share
        return out


def compute_stats(
    sentences: Sequence[Sentence],
    dataset: str = "",
    split: str = "",
    report: ReadReport | None = None,
) -> SplitStats:
    """Count sentences, tokens and spans (conlleval spans) per entity type."""
    types = {t: TypeStats() for t in ENTITY_TYPES}
    for sent in sentences:
        for etype, start, end in extract_spans(sent.tags):
            types[etype].spans += 1
            types[etype].single_word += int(end - start == 1)
    return SplitStats(
        dataset=dataset,
        split=split,
        sentences=len(sentences),
        tokens=sum(len(s.tokens) for s in sentences),
        types=types,
        mapped_to_o=dict(report.mapped_to_o) if report else {},
        repaired=report.n_repaired if report else 0,
    )


def split_stats(code: str, split: str, data_root: Path) -> SplitStats:
    """:func:`compute_stats` of a registered split under the resolved ``data_root``."""
    sentences, report = load_split(code, split, data_root)
    return compute_stats(sentences, code, split, report)


def format_stats(stats: SplitStats) -> str:
    """Human-readable block for the CLI."""
    lines = [
        f"{stats.dataset} {stats.split}: {stats.sentences} sentences, {stats.tokens} tokens",
        f"  {'type':<5} {'spans':>7} {'single-word':>12}",
    ]
    for name, ts in stats.types.items():
        share = "-" if ts.single_word_share is None else f"{100 * ts.single_word_share:.1f}%"
        lines.append(f"  {name:<5} {ts.spans:>7} {share:>12}")
    mapped = ", ".join(f"{k} {v}" for k, v in stats.mapped_to_o.items()) or "none"
    lines.append(f"  reader: tags read as O: {mapped}; stray I- read as B-: {stats.repaired}")
    return "\n".join(lines)

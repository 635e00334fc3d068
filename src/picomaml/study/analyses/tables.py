"""What an analysis produces and what it is given: :class:`Table`, :class:`Analysis`,
:class:`Context`, :class:`DataAccess`, plus the conventions of its rows (entity types, target
names, percent, the files behind a row).

Conventions: F1 is entity-level micro-F1 in seqeval's default mode, shown in percent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picomaml import layout
from picomaml.data.labels import ENTITY_TYPES
from picomaml.study.config import AnalysisSpec
from picomaml.study.records import CellRecord

TYPES = ENTITY_TYPES
TARGET_NAMES = {"tl_trg": "Tagalog TRG", "tl_ugnayan": "Tagalog Ugnayan", "ceb_gja": "Cebuano GJA"}


@dataclass
class Table:
    """A result table; ``files[i]`` lists the result files behind ``rows[i]``."""

    caption: str
    columns: list[str]
    rows: list[dict[str, Any]]
    files: list[list[str]] = field(default_factory=list)


@dataclass
class Analysis:
    """What one analysis produced (or why it could not)."""

    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    unavailable: str | None = None

    def table(self, caption: str, rows: list[dict[str, Any]], files: list[list[str]]) -> None:
        """Add a table whose columns are the keys of its first row."""
        self.tables.append(Table(caption, list(rows[0]), rows, files))

    def missing(self, reason: str) -> Analysis:
        """Mark the analysis not available, saying why; returns it (``return a.missing(...)``)."""
        self.unavailable = reason
        return self


@dataclass
class Context:
    """Where figures go and the knobs; ``data`` gives dataset tag/word access (None: offline
    analyses that need the raw data are reported unavailable)."""

    results_dir: Path
    spec: AnalysisSpec = field(default_factory=AnalysisSpec)
    data: DataAccess | None = None

    @property
    def fig_dir(self) -> Path:
        """``RESULTS_DIR/figures`` (created on demand)."""
        d = self.results_dir / layout.FIGURES_DIR
        d.mkdir(parents=True, exist_ok=True)
        return d


@dataclass
class DataAccess:
    """Access to raw datasets for analyses 8-9, injected so tests need no data root.

    ``sentences(code, split)`` returns ``[(tokens, tags)]``; ``subword_counts(words)``
    returns the number of subwords of each word as the model sees it in running text.
    """

    sentences: Callable[[str, str], list[tuple[list[str], list[str]]]]
    subword_counts: Callable[[list[str]], list[int]] | None = None


def pct(x: float | None) -> float | None:
    """Fraction -> percent (None stays None)."""
    return None if x is None else 100.0 * x


def files_of(cells: Iterable[CellRecord], name: str = "results.json") -> list[str]:
    """The result files behind a row (cited under its table)."""
    return [c.file(name) for c in cells]

"""The study's analyses (paper Sections 3-5, Appendices B and D).

Each ``analysis_*`` function maps loaded records (:class:`StudyData`) to an
:class:`Analysis`: tables (rows of plain values, each row citing the result files it was
computed from), PNG figures (drawn by :mod:`.plots` from those rows) and short text. When
the data an analysis needs is absent, it returns ``unavailable`` with the reason instead of
a figure: the report never fakes a number. Analyses read no files themselves; everything
comes through :mod:`picomaml.study.records`.

Modules: :mod:`.tables` (what an analysis produces and is given), :mod:`.cells` (which
cells are compared: pairs, sweep groups, sizes), one module per family
(:mod:`.zero_shot` 1-3, :mod:`.sweeps` 4-6, :mod:`.convergence` 7, :mod:`.language` 8-9,
:mod:`.pairs` 10-11, :mod:`.pretraining` 12-13, and the ablations of Section 4.2:
:mod:`.ablations_eval` 14 and 16, :mod:`.ablations_train` 15 and 17) and :mod:`.plots`
(:mod:`.ablation_plots` for the ablations).
"""

from __future__ import annotations

from collections.abc import Callable

from picomaml.study.analyses.ablations_eval import (
    analysis_name_ablation,
    analysis_particle_ablation,
)
from picomaml.study.analyses.ablations_train import (
    analysis_balance_ablation,
    analysis_fewshot_ablation,
)
from picomaml.study.analyses.cells import pair_cells, param_count, zero_shot_f1
from picomaml.study.analyses.convergence import (
    analysis_convergence,
    convergence_deltas,
    convergence_metrics,
)
from picomaml.study.analyses.language import (
    analysis_particles,
    analysis_span_stats,
    particle_recall,
    span_stat_rows,
)
from picomaml.study.analyses.pairs import analysis_cases, analysis_paired
from picomaml.study.analyses.pretraining import (
    analysis_pretraining,
    analysis_probe,
    chance_verdict,
    pretraining_summary,
    probe_rows,
)
from picomaml.study.analyses.sweeps import analysis_confidence, analysis_sweep, analysis_types
from picomaml.study.analyses.tables import Analysis, Context, DataAccess, Table, pct
from picomaml.study.analyses.zero_shot import analysis_regime, analysis_scale, analysis_sources
from picomaml.study.records import StudyData

ANALYSES: list[Callable[[StudyData, Context], Analysis]] = [
    analysis_scale,
    analysis_regime,
    analysis_sources,
    analysis_sweep,
    analysis_types,
    analysis_confidence,
    analysis_convergence,
    analysis_span_stats,
    analysis_particles,
    analysis_cases,
    analysis_paired,
    analysis_pretraining,
    analysis_probe,
]
#: The ablations of Section 4.2 (``ablations:`` in the grid), reported after the others.
ABLATION_ANALYSES: list[Callable[[StudyData, Context], Analysis]] = [
    analysis_particle_ablation,
    analysis_balance_ablation,
    analysis_name_ablation,
    analysis_fewshot_ablation,
]


def has_ablations(data: StudyData) -> bool:
    """Whether the grid ran any ablation (a grid without one gets no ablation sections)."""
    configured = any((data.grid.get("ablations") or {}).values())
    return configured or bool(data.derived) or bool(data.of_kind("balanced"))


def run_all(data: StudyData, ctx: Context) -> list[Analysis]:
    """Every analysis, in the paper's order, then the ablations the grid ran."""
    extra = ABLATION_ANALYSES if has_ablations(data) else []
    return [fn(data, ctx) for fn in [*ANALYSES, *extra]]


__all__ = [
    "ABLATION_ANALYSES",
    "ANALYSES",
    "Analysis",
    "Context",
    "DataAccess",
    "Table",
    "convergence_deltas",
    "convergence_metrics",
    "pair_cells",
    "param_count",
    "particle_recall",
    "pct",
    "chance_verdict",
    "pretraining_summary",
    "probe_rows",
    "run_all",
    "span_stat_rows",
    "zero_shot_f1",
]

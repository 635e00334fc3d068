"""Analyses 1-3: zero-shot F1 on the targets by model size, fine-tuning regime and source
(paper Figures 1-3).
"""

from __future__ import annotations

from typing import Any

from picomaml.data.registry import TARGETS
from picomaml.study import summary_stats
from picomaml.study.analyses import plots
from picomaml.study.analyses.cells import over_main_pairs, pair_cells, paired_means, sizes_of
from picomaml.study.analyses.tables import Analysis, Context, files_of, pct
from picomaml.study.records import StudyData


@over_main_pairs("scale", "Scale curve: zero-shot F1 on Tagalog + Cebuano vs parameter count")
def analysis_scale(a: Analysis, data: StudyData, ctx: Context, pairs: list[tuple]) -> None:
    """1. Zero-shot F1 vs parameter count, vanilla vs MAML, with the relative gain (Fig. 1)."""
    sizes, params = sizes_of([p[0] for p in pairs])
    rows, files = [], []
    for size in sizes:
        sel = [p for p in pairs if p[0].size == size]
        mb, mt, cols = paired_means(sel)
        rel = summary_stats.relative_gain(mb, mt)
        rows.append(
            {"size": size, "parameters": params.get(size), **cols, "relative gain (%)": pct(rel)}
        )
        files.append(files_of([c for p in sel for c in p[:2]]))
    a.table(
        "Zero-shot F1 (%), mean over paired cells (regimes x sources x seeds) per size",
        rows,
        files,
    )
    all_pairs = pair_cells(data.main(), ctx.spec.baseline_variant, ctx.spec.treatment_variant)
    codes = sorted(
        {d for b, t in all_pairs for d in b.datasets if d in t.datasets},
        key=lambda d: (TARGETS.index(d) if d in TARGETS else len(TARGETS), d),
    )
    drows, dfiles = [], []
    for code in codes:
        sel = [(b, t) for b, t in all_pairs if code in b.datasets and code in t.datasets]
        mb = summary_stats.mean([b.f1(code) for b, _ in sel])  # type: ignore[misc]
        mt = summary_stats.mean([t.f1(code) for _, t in sel])  # type: ignore[misc]
        drows.append(
            {
                "dataset": code,
                "pairs": len(sel),
                "vanilla F1": pct(mb),
                "MAML F1": pct(mt),
                "delta (pp)": pct(mt - mb),  # type: ignore[operator]
            }
        )
        dfiles.append(files_of([c for p in sel for c in p]))
    a.table(
        "Every evaluated test set: micro-F1 (%), mean over paired cells of all sizes",
        drows,
        dfiles,
    )
    a.figures.append(plots.save(plots.scale(rows), ctx.fig_dir, "1_scale.png"))


@over_main_pairs("regime", "Fine-tuning regime: head-only vs full, per size")
def analysis_regime(a: Analysis, data: StudyData, ctx: Context, pairs: list[tuple]) -> None:
    """2. Head-only vs full fine-tuning, per size (Fig. 2)."""
    sizes, params = sizes_of([p[0] for p in pairs])
    regimes = [r for r in ("head", "full") if any(p[0].regime == r for p in pairs)]
    rows, files = [], []
    for regime in regimes:
        for size in sizes:
            sel = [p for p in pairs if p[0].size == size and p[0].regime == regime]
            if not sel:
                continue
            rows.append({"regime": regime, "size": size, **paired_means(sel)[2]})
            files.append(files_of([c for p in sel for c in p[:2]]))
    a.table("Zero-shot F1 (%) by regime and size", rows, files)
    a.figures.append(plots.save(plots.regime(rows, regimes, params), ctx.fig_dir, "2_regime.png"))


@over_main_pairs("sources", "Sensitivity to the fine-tuning language: MAML - vanilla per source")
def analysis_sources(a: Analysis, data: StudyData, ctx: Context, pairs: list[tuple]) -> None:
    """3. MAML - vanilla per fine-tuning source (Fig. 3)."""
    sizes, params = sizes_of([p[0] for p in pairs])
    sources = sorted({p[0].source for p in pairs}, key=lambda s: (s == "all", s))
    rows, files = [], []
    for source in sources:
        sel = [p for p in pairs if p[0].source == source]
        mb, mt, cols = paired_means(sel)
        row: dict[str, Any] = {
            "source": source,
            **cols,
            "relative gain (%)": pct(summary_stats.relative_gain(mb, mt)),
        }
        for size in sizes:
            ss = [p for p in sel if p[0].size == size]
            row[f"delta {size}"] = (
                pct(summary_stats.mean([p[3] - p[2] for p in ss])) if ss else None
            )
        rows.append(row)
        files.append(files_of([c for p in sel for c in p[:2]]))
    a.table(
        "Zero-shot F1 (%) per fine-tuning source, mean over sizes x regimes x seeds; "
        "delta <size> = MAML - vanilla (pp) at that size",
        rows,
        files,
    )
    a.figures.append(plots.save(plots.sources(rows, sizes, sources), ctx.fig_dir, "3_sources.png"))

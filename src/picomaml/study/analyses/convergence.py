"""Analysis 7: fine-tuning convergence speed, MAML - vanilla (paper Table 2)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from picomaml.study import loss_curves, summary_stats
from picomaml.study.analyses import plots
from picomaml.study.analyses.cells import pair_cells, sizes_of
from picomaml.study.analyses.tables import Analysis, Context, files_of
from picomaml.study.records import CellRecord, StudyData


def convergence_metrics(train_log: Sequence[dict]) -> dict[str, float | None]:
    """t90, normalised AUC and initial slope of one fine-tuning run's train loss."""
    steps, losses = loss_curves.train_curve(train_log)
    return {
        "t90": loss_curves.t90(steps, losses),
        "auc": loss_curves.normalised_auc(steps, losses),
        "slope": loss_curves.initial_slope(steps, losses),
    }


def convergence_deltas(
    pairs: Sequence[tuple[CellRecord, CellRecord]],
) -> list[dict[str, Any]]:
    """MAML - vanilla convergence metrics averaged over the pairs of each (size, regime)."""
    acc: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for b, t in pairs:
        mb, mt = convergence_metrics(b.train_log), convergence_metrics(t.train_log)
        for name in ("t90", "auc", "slope"):
            if mb[name] is not None and mt[name] is not None:
                acc[(b.size, b.regime)][name].append(mt[name] - mb[name])  # type: ignore[operator]
        acc[(b.size, b.regime)]["n"].append(1)
    rows = []
    for (size, regime), d in acc.items():
        rows.append(
            {
                "size": size,
                "regime": regime,
                "pairs": len(d["n"]),
                "delta t90 (steps)": summary_stats.mean(d["t90"]),
                "delta AUC": summary_stats.mean(d["auc"]),
                "delta slope": summary_stats.mean(d["slope"]),
            }
        )
    return rows


def analysis_convergence(data: StudyData, ctx: Context) -> Analysis:
    """7. Fine-tuning speed: MAML - vanilla t90, normalised AUC, initial slope (Table 2)."""
    a = Analysis("convergence", "Fine-tuning convergence speed (MAML - vanilla)")
    pairs = [
        (b, t)
        for b, t in pair_cells(data.main(), ctx.spec.baseline_variant, ctx.spec.treatment_variant)
        if loss_curves.train_curve(b.train_log)[0] and loss_curves.train_curve(t.train_log)[0]
    ]
    if not pairs:
        return a.missing(
            "no vanilla/MAML pair of main-grid cells with train_log.jsonl train losses"
        )
    sizes, _ = sizes_of([p[0] for p in pairs])
    rows = convergence_deltas(pairs)
    rows.sort(key=lambda r: (sizes.index(r["size"]), r["regime"]))
    files = [
        files_of(
            [c for p in pairs if p[0].size == r["size"] and p[0].regime == r["regime"] for c in p],
            "train_log.jsonl",
        )
        for r in rows
    ]
    a.table("MAML - vanilla, averaged over sources (and seeds)", rows, files)
    a.text.append(
        "t90: first logged step at which the train loss has fallen 90% of the way from its "
        "first to its final value. AUC: area under the loss curve with steps rescaled to "
        "[0, 1] and loss divided by its first value (1 = no progress). Slope: least-squares "
        "slope of loss vs step over the first 10% of steps. Negative deltas = MAML faster."
    )
    a.figures.append(plots.save(plots.convergence(rows, sizes), ctx.fig_dir, "7_convergence.png"))
    return a

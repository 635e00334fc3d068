"""Analyses 4-6: fine-tuning from each pretraining checkpoint (paper Figures 5-7)."""

from __future__ import annotations

from collections.abc import Sequence

from picomaml import layout
from picomaml.data.registry import TARGETS
from picomaml.study import loss_curves, text_stats
from picomaml.study.analyses import plots
from picomaml.study.analyses.cells import (
    NO_SWEEP,
    SweepGroups,
    group_name,
    over_sweep_groups,
    sweep_groups,
)
from picomaml.study.analyses.tables import TYPES, Analysis, Context, pct
from picomaml.study.records import CellRecord, StudyData


def final_train_loss(cell: CellRecord) -> float | None:
    """Last logged fine-tuning train loss."""
    _, losses = loss_curves.train_curve(cell.train_log)
    return losses[-1] if losses else None


def source_dev_f1(cell: CellRecord) -> float | None:
    """Best source dev F1 (the early-stopping criterion), from run.json or the log."""
    if cell.run.get("best_dev_f1") is not None:
        return float(cell.run["best_dev_f1"])
    devs = [float(r["f1"]) for r in cell.train_log if r.get("kind") == "dev"]
    return max(devs) if devs else None


@over_sweep_groups("sweep", "Checkpoint sweep: fine-tuning outcome vs pretraining step")
def analysis_sweep(a: Analysis, data: StudyData, ctx: Context, groups: SweepGroups) -> None:
    """4. Final train loss, source dev F1 and target F1 vs pretraining step (Fig. 5)."""
    rows, files = [], []
    for key, cells in groups.items():
        for c in cells:
            rows.append(
                {
                    "run": group_name(key),
                    "step": c.step,
                    "final train loss": final_train_loss(c),
                    "source dev F1": pct(source_dev_f1(c)),
                    **{f"{t} F1": pct(c.f1(t)) for t in TARGETS},
                }
            )
            files.append([c.file("results.json"), c.file("train_log.jsonl")])
    a.table("Per checkpoint (F1 in %)", rows, files)
    a.figures.append(plots.save(plots.sweep(rows, groups), ctx.fig_dir, "4_sweep.png"))


@over_sweep_groups("types", "Per-type F1 across pretraining checkpoints")
def analysis_types(a: Analysis, data: StudyData, ctx: Context, groups: SweepGroups) -> None:
    """5. Per-type F1 (PER, LOC, ORG) on each target across checkpoints (Fig. 6)."""
    rows, files = [], []
    for key, cells in groups.items():
        for c in cells:
            for t in TARGETS:
                if t not in c.datasets:
                    continue
                rows.append(
                    {
                        "run": group_name(key),
                        "step": c.step,
                        "dataset": t,
                        **{f"{e} F1": pct(c.type_f1(t, e)) for e in TYPES},
                    }
                )
                files.append([c.file("results.json")])
    if not rows:
        a.missing("sweep cells have no target-set results")
        return
    a.table("Per-type F1 (%) per checkpoint and target", rows, files)
    a.figures.append(plots.save(plots.types(rows, groups), ctx.fig_dir, "5_types.png"))


def confidence_matrix(
    cells: Sequence[CellRecord], dataset: str, k: int, entity: bool
) -> tuple[list[str], list[list[float | None]]] | None:
    """(words, matrix[word][checkpoint]) of mean p(gold) for the k most frequent entity or
    non-entity words of ``dataset``; None when a checkpoint lacks confidence scores."""
    if not cells or not all(c.has_confidence.get(dataset) for c in cells):
        return None
    first = cells[0].sentences[dataset]
    words = text_stats.top_words(((s.tokens, s.gold) for s in first), k, entity)
    matrix: list[list[float | None]] = [[] for _ in words]
    for c in cells:
        conf = text_stats.mean_word_confidence(
            ((s.tokens, s.gold, s.p_gold) for s in c.sentences[dataset]),
            words,
            entity,  # type: ignore[misc]
        )
        for i, w in enumerate(words):
            matrix[i].append(conf[w])
    return words, matrix


def analysis_confidence(data: StudyData, ctx: Context) -> Analysis:
    """6. Heatmaps of p(gold) for frequent entity/non-entity words across checkpoints (Fig. 7)."""
    a = Analysis("confidence", "Token-level confidence across checkpoints")
    groups = sweep_groups(data.sweep())
    if not groups:
        return a.missing(NO_SWEEP)
    k = ctx.spec.top_words
    for key, cells in groups.items():
        mats = {
            (t, ent): confidence_matrix(cells, t, k, ent) for t in TARGETS for ent in (True, False)
        }
        if not any(v is not None and v[0] for v in mats.values()):
            continue
        steps = [c.step for c in cells]
        rows, files = [], []
        for t in TARGETS:
            for ent in (True, False):
                m = mats[(t, ent)]
                if m is None or not m[0]:
                    continue
                for w, row in zip(*m, strict=True):
                    rows.append(
                        {
                            "dataset": t,
                            "kind": "entity" if ent else "non-entity",
                            "word": w,
                            f"p(gold) step {steps[0]}": row[0],
                            f"p(gold) step {steps[-1]}": row[-1],
                            "change": None
                            if row[0] is None or row[-1] is None
                            else row[-1] - row[0],
                        }
                    )
                    conf = layout.confidence_file(t)
                    files.append([cells[0].file(conf), cells[-1].file(conf)])
        fig = plots.confidence(mats, steps, key)
        name = f"6_confidence_{group_name(key)}.png"
        a.figures.append(plots.save(fig, ctx.fig_dir, name, dpi=110, tight_bbox=True))
        a.table(
            f"{group_name(key)}: mean p(gold) at first and last checkpoint",
            rows,
            files,
        )
    if not a.figures:
        return a.missing("sweep cells have no confidence/{target}.jsonl files")
    return a

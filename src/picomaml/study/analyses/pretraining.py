"""Analysis 12: pretraining dynamics of each backbone run (from its ``metrics.jsonl``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from picomaml.study import metrics_pure as mp
from picomaml.study.analyses import plots
from picomaml.study.analyses.kit import (
    Analysis,
    Context,
    pct,
)
from picomaml.study.records import PretrainRun, StudyData


def _tail(values: Sequence[float], share: float = 0.2) -> list[float]:
    """The last ``share`` of a series (at least one value)."""
    return list(values[-max(1, math.ceil(len(values) * share)) :])


def pretraining_summary(
    metrics: Sequence[dict[str, Any]], ways: int | None
) -> dict[str, float | int | None]:
    """Summary of one run's ``metrics.jsonl``: end-of-run losses (mean of the last 20% of
    logged values) and episode accuracies, with ln N as the no-adaptation reference."""
    train = [m for m in metrics if m.get("kind") == "train"]
    dyn = [m for m in metrics if m.get("kind") == "dynamics" and m.get("val_perplexity")]

    def series(key: str) -> list[float]:
        return [float(m[key]) for m in train if m.get(key) is not None]

    # Each logged row covers the same number of steps, so the ratio of the logged per-step
    # means is the run's share of meta micro-batches.
    n_ar = sum(float(m.get("ar_per_step") or 0) for m in train)
    n_meta = sum(float(m.get("meta_per_step") or 0) for m in train)
    return {
        "steps": int(train[-1]["step"]) if train else None,
        "meta share (%)": pct(n_meta / (n_ar + n_meta)) if n_ar + n_meta else None,
        "AR loss": mp.mean(_tail(series("ar_loss"))),
        "val perplexity": float(dyn[-1]["val_perplexity"]) if dyn else None,
        "meta loss": mp.mean(_tail(series("meta_loss"))),
        "chance loss ln N": math.log(ways) if ways else None,
        "support acc before (%)": pct(mp.mean(_tail(series("support_acc_before")))),
        "support acc after (%)": pct(mp.mean(_tail(series("support_acc_after")))),
        "query acc (%)": pct(mp.mean(_tail(series("query_acc")))),
    }


def analysis_pretraining(data: StudyData, ctx: Context) -> Analysis:
    """12. Pretraining dynamics of each backbone run: AR loss, held-out perplexity, and for
    MAML runs the episode query loss against ln N (chance), which shows whether the inner
    loop adapted at all."""
    a = Analysis("pretraining", "Pretraining dynamics of the backbones")
    runs: dict[tuple[str, str], PretrainRun] = {}
    for c in sorted(data.cells, key=lambda c: (c.kind != "main", c.cell_id)):
        run = data.pretrain_run(c)
        if run is not None and run.metrics is not None:
            runs.setdefault((c.variant, c.size), run)
    if not runs:
        return a.missing("no backbone is a pretraining run dir with metrics.jsonl")
    rows, files, curves = [], [], {}
    for (variant, size), run in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        assert run.metrics is not None
        meta = run.config.get("meta", {})
        ways = meta.get("ways") if meta.get("enabled") else None
        rows.append({"variant": variant, "size": size, **pretraining_summary(run.metrics, ways)})
        files.append([str(run.metrics_file)])
        curves[(variant, size)] = run.metrics
    a.table(
        "End of pretraining (means over the last 20% of logged steps)",
        rows,
        files,
    )
    for r in rows:
        ln_n = r["chance loss ln N"]
        if r["meta loss"] is not None and ln_n is not None:
            gap = ln_n - r["meta loss"]
            verdict = (
                "the adapted head is no better than chance on the query set (within 0.05 "
                "nats of ln N), so the episodes are not being solved; with the zero output "
                "layer this also means a near-zero meta-gradient (see `meta.output_init` and "
                "`meta.inner_lr` in docs/pretraining.md)"
                if gap < 0.05
                else "the episodes are learned (query loss below chance)"
            )
            a.text.append(
                f"{r['variant']}-{r['size']}: meta query loss {r['meta loss']:.3f} vs "
                f"ln N = {ln_n:.3f}: {verdict}."
            )
    a.figures.append(plots.save(plots.pretraining(rows, curves), ctx.fig_dir, "12_pretraining.png"))
    return a

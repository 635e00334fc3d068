"""Analyses 12-13: pretraining dynamics of each backbone run (its ``metrics.jsonl``) and
the few-shot probe of its checkpoints (its ``probe.json``, written by ``picomaml probe``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from picomaml.study import summary_stats
from picomaml.study.analyses import plots
from picomaml.study.analyses.tables import Analysis, Context, pct
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
        "AR loss": summary_stats.mean(_tail(series("ar_loss"))),
        "val perplexity": float(dyn[-1]["val_perplexity"]) if dyn else None,
        "meta loss": summary_stats.mean(_tail(series("meta_loss"))),
        "chance loss ln N": math.log(ways) if ways else None,
        "support acc before (%)": pct(summary_stats.mean(_tail(series("support_acc_before")))),
        "support acc after (%)": pct(summary_stats.mean(_tail(series("support_acc_after")))),
        "query acc (%)": pct(summary_stats.mean(_tail(series("query_acc")))),
        "chance acc (%)": pct(1 / ways) if ways else None,
        "feature cosine": summary_stats.mean(_tail(series("feature_cosine"))),
        "class share": summary_stats.mean(_tail(series("feature_class_share"))),
        "AR grad norm": summary_stats.mean(_tail(series("ar_grad_norm"))),
        "meta grad norm": summary_stats.mean(_tail(series("meta_grad_norm"))),
        "query max prob": summary_stats.mean(_tail(series("query_max_prob"))),
        "query entropy": summary_stats.mean(_tail(series("query_entropy"))),
        "logit scale": summary_stats.mean(_tail(series("logit_scale"))),
        "[MASK] norm": summary_stats.mean(_tail(series("mask_embedding_norm"))),
    }


#: Steps after which the ``cpu-maml`` preset's query loss first fell clearly below ln N
#: (docs/pretraining.md, "CPU-scale evidence"); a shorter run at ln N is read against it.
COLLAPSE_STEPS = 250


def chance_verdict(summary: dict[str, Any]) -> str:
    """Whether a run's episodes are solved, and if not, the likely reason in one line."""
    ln_n, loss = summary["chance loss ln N"], summary["meta loss"]
    if ln_n - loss >= 0.05:
        return "the episodes are learned (query loss below chance)"
    cosine, steps = summary.get("feature cosine"), summary.get("steps") or 0
    if cosine is not None and cosine > 0.99 and steps < COLLAPSE_STEPS:
        return (
            f"not below chance yet: after {steps} steps the backbone's features are still "
            f"collapsed (support cosine {cosine:.3f}), and the cpu-maml preset needed about "
            f"{COLLAPSE_STEPS} steps to leave that collapse; a run this short cannot show "
            "the episodes learning (docs/pretraining.md)"
        )
    return (
        "the adapted head is no better than chance on the query set (within 0.05 nats of "
        "ln N), so the episodes are not being solved (see `meta.learner` and "
        "`meta.output_init` in docs/pretraining.md)"
    )


def class_share_baseline(ways: int, shots: int) -> float:
    """Expected share of variance explained by class on pure noise, ``(N-1)/(N*K-1)``: the
    level above which the features carry class information."""
    return (ways - 1) / (ways * shots - 1)


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
            a.text.append(
                f"{r['variant']}-{r['size']}: meta query loss {r['meta loss']:.3f} vs "
                f"ln N = {ln_n:.3f}: {chance_verdict(r)}."
            )
    a.text.append(
        "Support accuracy before adaptation is leave-one-out for prototype heads (a point "
        "never votes for its own class); after adaptation it is training accuracy. Feature "
        "cosine is the mean pairwise cosine of an episode's support features (1 = "
        "collapsed); class share is the share of their variance explained by the class, to "
        "be read against its pure-noise level (N-1)/(N*K-1). Gradient norms are pre-clip "
        "norms of single AR and meta micro-batches on logged steps."
    )
    baselines = {}
    for (variant, size), run in runs.items():
        meta = run.config.get("meta", {})
        if meta.get("enabled") and meta.get("ways") and meta.get("shots"):
            baselines[(variant, size)] = class_share_baseline(meta["ways"], meta["shots"])
    fig = plots.pretraining(rows, curves, baselines)
    a.figures.append(plots.save(fig, ctx.fig_dir, "12_pretraining.png"))
    return a


def probe_rows(
    probes: dict[tuple[str, str], dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per checkpoint: prototype and adapted accuracy with 95% intervals; and, for steps
    probed in both a MAML and a vanilla run of one size with the same settings (hence the
    same episodes), the paired MAML - vanilla difference with its interval."""
    rows = []
    for (variant, size), probe in sorted(probes.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        for c in probe.get("checkpoints", []):
            row: dict[str, Any] = {"variant": variant, "size": size, "step": c.get("step")}
            for kind in ("prototype", "adapted"):
                lo, hi = c[kind]["ci95"]
                row[f"{kind} acc (%)"] = pct(c[kind]["mean"])
                row[f"{kind} CI low (%)"] = pct(lo)
                row[f"{kind} CI high (%)"] = pct(hi)
            row["chance (%)"] = pct(probe.get("chance"))
            row["episodes"] = c["prototype"]["n"]
            rows.append(row)
    diffs = []
    sizes = sorted({size for _, size in probes})
    for size in sizes:
        maml, van = probes.get(("maml", size)), probes.get(("vanilla", size))
        if maml is None or van is None:
            continue
        if any(maml.get(k) != van.get(k) for k in ("settings", "corpus", "version")):
            continue
        by_step = {c.get("step"): c for c in van.get("checkpoints", [])}
        for c in maml.get("checkpoints", []):
            v = by_step.get(c.get("step"))
            if v is None:
                continue
            row = {"size": size, "step": c.get("step")}
            for kind in ("prototype", "adapted"):
                a, b = c[kind]["per_episode"], v[kind]["per_episode"]
                ci = summary_stats.t_interval([x - y for x, y in zip(a, b, strict=True)])
                if ci is None:
                    continue
                row[f"{kind} MAML - vanilla (pp)"] = pct(ci[0])
                row[f"{kind} CI low (pp)"] = pct(ci[1])
                row[f"{kind} CI high (pp)"] = pct(ci[2])
                row[f"{kind} verdict"] = summary_stats.verdict(ci[1], ci[2])
            diffs.append(row)
    return rows, diffs


def analysis_probe(data: StudyData, ctx: Context) -> Analysis:
    """13. The few-shot probe (not in the paper): held-out SMLMT episodes scored on each
    probed checkpoint, nearest-prototype and after the paper's inner loop with a fixed
    fresh head, MAML against vanilla on the same episodes."""
    a = Analysis("probe", "Few-shot probe of the backbones (adapts quickly?)")
    probes: dict[tuple[str, str], dict[str, Any]] = {}
    files: dict[tuple[str, str], str] = {}
    for c in sorted(data.cells, key=lambda c: (c.kind != "main", c.cell_id)):
        run = data.pretrain_run(c)
        if run is not None and run.probe is not None and run.probe.get("checkpoints"):
            probes.setdefault((c.variant, c.size), run.probe)
            files.setdefault((c.variant, c.size), str(run.probe_file))
    if not probes:
        return a.missing(
            "no backbone run dir holds a probe.json (run `picomaml probe RUN_DIR "
            "--all-checkpoints` on the pretraining runs)"
        )
    a.text.append(
        "Held-out SMLMT episodes from the valid split, the same episodes for every backbone. "
        "Prototype: each query window goes to the nearest class mean of the backbone's own "
        "support features (no training). Adapted: query accuracy after the paper's inner "
        "loop with a fresh head built from a fixed seed (the same head for every backbone of "
        "a width). Intervals are 95% over episodes; the paired difference compares the two "
        "backbones episode by episode."
    )
    rows, diffs = probe_rows(probes)
    a.table(
        "Probe accuracy per checkpoint (mean over episodes, 95% interval)",
        rows,
        [[files[(r["variant"], r["size"])]] for r in rows],
    )
    if diffs:
        a.table(
            "MAML - vanilla on the same episodes (paired by episode, 95% interval)",
            diffs,
            [[files[("maml", r["size"])], files[("vanilla", r["size"])]] for r in diffs],
        )
    else:
        a.text.append(
            "No MAML/vanilla pair of one size was probed at the same steps with the same "
            "settings, so no paired difference is shown."
        )
    a.figures.append(plots.save(plots.probe(rows), ctx.fig_dir, "13_probe.png"))
    return a

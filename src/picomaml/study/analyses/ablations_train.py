"""Ablation analyses on the fine-tuning side: balanced resampling of the source's entity
types and few-shot target curves.

Balanced cells are paired with the natural main cell of the same backbone, regime, source
and seed and scored on the same target sentences, so the per-type comparison is a paired
bootstrap. Few-shot cells vary over seeded draws of target sentences; their bands and
intervals are over draws.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from picomaml.data.registry import TARGETS
from picomaml.study import ablation_stats as st
from picomaml.study import summary_stats
from picomaml.study.analyses import ablation_plots as plots
from picomaml.study.analyses.ablations_eval import system
from picomaml.study.analyses.tables import TYPES, Analysis, Context, pct
from picomaml.study.records import CellRecord, StudyData

HYPOTHESIS_BALANCE = (
    "**Paper's hypothesis (Section 4.2):** the person-heavy fine-tuning sets (Slovak: PER "
    "outnumbers LOC 8:1 and ORG 15:1) sharpen only the PER decision boundary."
)
HYPOTHESIS_FEWSHOT = (
    "**Paper's hypothesis (Section 3, Fig. 2):** meta-pretraining gives a cross-lingual prior "
    "that persists when the optimiser is free to change the model, so MAML should stay ahead "
    "of vanilla as annotated target sentences are added."
)


def _key(c: CellRecord) -> tuple:
    return (c.variant, c.size, c.regime, c.source, c.seed)


def balanced_pairs(data: StudyData) -> list[tuple[CellRecord, CellRecord]]:
    """(natural main cell, balanced cell) pairs of the same backbone, regime, source, seed."""
    main = {_key(c): c for c in data.main()}
    return [(main[_key(b)], b) for b in data.of_kind("balanced") if _key(b) in main]


def _targets_of(pairs: list[tuple[CellRecord, CellRecord]]) -> list[str]:
    return [t for t in TARGETS if all(t in c.sentences for p in pairs for c in p)]


def _stack(cells: list[CellRecord], targets: list[str], types: list[str]) -> np.ndarray:
    return np.concatenate([system(cells, t, types) for t in targets], axis=0)


def analysis_balance_ablation(data: StudyData, ctx: Context) -> Analysis:
    """A3. Per-type zero-shot F1 after natural vs balanced fine-tuning data."""
    a = Analysis("ablation_balance", "Ablation: balanced resampling of the fine-tuning data")
    if not (data.grid.get("ablations") or {}).get("balance") and not data.of_kind("balanced"):
        return a.missing("the grid has no `ablations.balance` section")
    a.text.append(HYPOTHESIS_BALANCE)
    pairs = balanced_pairs(data)
    targets = _targets_of(pairs)
    if not pairs or not targets:
        return a.missing("no balanced cell with a finished natural main cell beside it")
    n, seed = ctx.spec.n_resamples, ctx.spec.bootstrap_seed
    counts = [_balance_counts(bal) for _nat, bal in pairs]
    cfiles = [[bal.file("sampling.json")] for _nat, bal in pairs]
    rows, files = [], []
    present = {p[0].variant for p in pairs}
    order = (ctx.spec.baseline_variant, ctx.spec.treatment_variant)
    variants = [v for v in order if v in present] + sorted(present - set(order))
    for variant in variants:
        sel = [p for p in pairs if p[0].variant == variant]
        nat = [p[0] for p in sel]
        bal = [p[1] for p in sel]
        for etype in TYPES:
            sn, sb = _stack(nat, targets, [etype]), _stack(bal, targets, [etype])
            rows.append(
                {
                    "variant": variant,
                    "type": etype,
                    "cells": len(sel),
                    "gold spans": int(sn[:, 2].sum() // len(sel)),
                    "natural F1 (%)": pct(st.f1(sn)),
                    "balanced F1 (%)": pct(st.f1(sb)),
                    "balanced - natural (pp) [95% CI]": st.contrast(
                        [sb, sn], [1, -1], n, seed
                    ).text(),
                }
            )
            files.append([c.file(f"predictions/{t}.iob2") for c in nat + bal for t in targets])
    nat_all, bal_all = [p[0] for p in pairs], [p[1] for p in pairs]
    lo_nat = _stack(nat_all, targets, ["LOC", "ORG"])
    lo_bal = _stack(bal_all, targets, ["LOC", "ORG"])
    main = st.contrast([lo_bal, lo_nat], [1, -1], n, seed)
    gold = int(lo_nat[:, 2].sum() // len(pairs))
    per_nat = st.f1(_stack(nat_all, targets, ["PER"]))
    result = st.verdict(main, _balance_premise(gold, per_nat, bal_all))
    summary = [
        {
            "statistic": "LOC + ORG F1, balanced - natural, all pairs (pp) [95% CI]",
            "value": main.text(),
            "verdict": result[0],
        }
    ]
    base, treat = ctx.spec.baseline_variant, ctx.spec.treatment_variant
    matched: dict[tuple, dict[str, tuple]] = defaultdict(dict)
    for p in pairs:
        matched[_key(p[0])[1:]][p[0].variant] = p
    both = [m for m in matched.values() if base in m and treat in m]
    if both:
        quad = [
            _stack([m[v][i] for m in both], targets, ["PER"])
            for v, i in ((treat, 1), (base, 1), (treat, 0), (base, 0))
        ]
        dd = st.contrast(quad, [1, -1, -1, 1], n, seed)
        summary.append(
            {
                "statistic": "(MAML - vanilla PER F1) balanced - natural (pp) [95% CI]",
                "value": dd.text(),
                "verdict": "secondary: negative = balancing shrinks MAML's PER lead",
            }
        )
    a.text.append(
        "Balanced cells resample the source's entity-bearing training sentences so PER, LOC "
        "and ORG spans are as equal as the data allows, at the natural data's number of "
        "sentences (so the same optimiser updates per epoch); sentences without entities are "
        "kept. Scores: the three targets pooled. Statistic: LOC + ORG F1 of balanced minus "
        "natural cells; positive = the type mix of the fine-tuning data, not the backbone, "
        f"kept LOC and ORG down. Paired bootstrap over sentences, {n} resamples, seed {seed}."
    )
    a.text.append(f"**Verdict: {result[0]}.** LOC + ORG F1, balanced - natural: {result[1]}.")
    a.table("Span counts of the training data before and after balancing", counts, cfiles)
    a.table("Per-type zero-shot F1, natural vs balanced (targets and cells pooled)", rows, files)
    every = [f for fs in files for f in fs]
    a.table("Pooled statistics", summary, [every] * len(summary))
    a.figures.append(plots.save(plots.balance(rows), ctx.fig_dir, "a2_balance.png"))
    return a


def _balance_counts(bal: CellRecord) -> dict[str, Any]:
    """A balanced cell's span counts per type before and after resampling."""
    rec = bal.sampling or {}
    before, after = rec.get("before", {}), rec.get("after", {})
    return {
        "cell": bal.cell_id,
        "sentences": after.get("sentences"),
        **{f"{t} before": before.get(t) for t in TYPES},
        **{f"{t} after": after.get(t) for t in TYPES},
        "distinct sentences": rec.get("distinct_sentences"),
    }


def _balance_premise(gold: int, per_nat: float, bal_all: list[CellRecord]) -> str | None:
    """Why A3's contrast cannot answer its question (``None``: it can): too few LOC + ORG
    spans, no PER transfer for the type mix to explain, or balanced cells that learned too
    little on the source."""
    if gold < st.MIN_SPANS:
        return f"the targets hold {gold} gold LOC + ORG spans, fewer than {st.MIN_SPANS}"
    if per_nat < st.FLOOR:
        return (
            f"PER F1 of the natural cells is {100 * per_nat:.1f}%, below "
            f"{100 * st.FLOOR:.0f}%: there is no PER-only transfer here for the type mix to "
            "explain"
        )
    dev = summary_stats.mean([float(c.run.get("best_dev_f1", 0.0)) for c in bal_all])
    if dev < st.FLOOR:
        return (
            f"the balanced cells reach a source dev F1 of {100 * (dev or 0.0):.1f}% on average, "
            f"below {100 * st.FLOOR:.0f}%: fine-tuning on the balanced data learned too little "
            "to compare"
        )
    return None


def fewshot_points(data: StudyData) -> dict[tuple, list[tuple[int | None, float, float, str]]]:
    """(size, source, target, regime, variant, k) -> [(draw, micro F1, PER F1, file)] of the
    few-shot cells (fractions; a ``k = 0`` cell counts for every target it scored)."""
    out: dict[tuple, list[tuple[int | None, float, float, str]]] = defaultdict(list)
    for c in data.of_kind("fewshot"):
        for key, entry in c.datasets.items():
            if not key.endswith(".eval-half"):
                continue
            target = key.removesuffix(".eval-half")
            k = int(c.k or 0)
            f1 = float(entry["default"]["micro"]["f1"])
            per = float(entry["default"]["per_type"].get("PER", {}).get("f1", 0.0))
            point = (c.draw, f1, per, c.file("results.json"))
            out[(c.size, c.source, target, c.regime, c.variant, k)].append(point)
    return dict(sorted(out.items()))


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    return pct(summary_stats.mean(values)), pct(summary_stats.std(values))


def analysis_fewshot_ablation(data: StudyData, ctx: Context) -> Analysis:
    """A4. F1 against k annotated target sentences, bands over draws."""
    a = Analysis("ablation_fewshot", "Ablation: few-shot target curves")
    info = data.derived.get("fewshot")
    if not info:
        return a.missing("the grid has no `ablations.fewshot` section")
    a.text.append(HYPOTHESIS_FEWSHOT)
    points = fewshot_points(data)
    if not points:
        return a.missing("no finished few-shot cell")
    base, treat = ctx.spec.baseline_variant, ctx.spec.treatment_variant
    targets = info["targets"]
    unreadable = {
        t: v["eval"]["spans"]["PER"]
        for t, v in targets.items()
        if v["eval"]["spans"]["PER"] < st.MIN_SPANS
    }
    rows, files, curves = [], [], []
    groups = sorted({k[:4] for k in points})
    by_draw: dict[int, list[float]] = defaultdict(list)
    for size, source, target, regime in groups:
        for k in info["params"]["ks"]:
            got = {v: points.get((size, source, target, regime, v, k), []) for v in (base, treat)}
            if not any(got.values()):
                continue
            k_used = targets[target]["k_used"][str(k)]
            row: dict[str, Any] = {
                "size": size,
                "source": source,
                "target": target,
                "regime": regime,
                "k": k,
                "k used": f"{k_used} (capped)" if k_used < k else k_used,
                "draws": max(len(v) for v in got.values()),
            }
            for v, label in ((base, "vanilla"), (treat, "MAML")):
                row[f"{label} F1 (%)"], row[f"{label} s.d."] = _mean_sd([p[1] for p in got[v]])
            for v, label in ((base, "vanilla"), (treat, "MAML")):
                if target in unreadable:
                    row[f"{label} PER F1 (%)"] = "too few to read"
                else:
                    row[f"{label} PER F1 (%)"] = _mean_sd([p[2] for p in got[v]])[0]
            rows.append(row)
            values = {v: [p[1] for p in got[v]] for v in got}
            curves.append({**row, "k": k_used, "values": values})
            files.append([p[3] for v in (base, treat) for p in got[v]])
            if k > 0:
                paired = {p[0]: p[1] for p in got[treat]}
                for d, f1, _, _ in got[base]:
                    if d in paired:
                        by_draw[int(d)].append(paired[d] - f1)  # type: ignore[arg-type]
    deltas = [summary_stats.mean(v) for _, v in sorted(by_draw.items())]
    best = max(f1 for pts in points.values() for _, f1, _, _ in pts)
    premise = None
    if best < st.FLOOR:
        premise = (
            f"micro-F1 stays below {100 * st.FLOOR:.0f}% (at most {100 * best:.1f}%) for every "
            "variant, k and draw: the models learn too little here to compare how they adapt"
        )
    result = st.t_verdict([d for d in deltas if d is not None], premise)
    capped = [
        f"{t}: k = {', '.join(map(str, v['capped']))} cut to {v['pool']} (its non-evaluation "
        f"half holds {v['pool']} sentences)"
        for t, v in targets.items()
        if v["capped"]
    ]
    halves = ", ".join(
        f"{t} {v['eval']['sentences']} of {v['sentences']} ({v['eval']['spans']['PER']} PER)"
        for t, v in targets.items()
    )
    a.text.append(
        f"Each target is split once (seed {info['params']['split_seed']}) into an evaluation "
        f"half, which no draw touches ({halves}), and a pool; each k > 0 cell adds a seeded "
        f"draw of k pool sentences to the source's training data ({info['params']['draws']} "
        "draws per k, nested across k; the same draws for every backbone). Bands: min-max "
        "over draws. Statistic: MAML - vanilla micro-F1 over every k > 0, target and regime, "
        "averaged per draw; Student-t interval over draws."
    )
    a.text.append("Where k was capped: " + ("; ".join(capped) if capped else "nowhere") + ".")
    overrides = ((data.grid.get("ablations") or {}).get("fewshot") or {}).get("finetune") or {}
    if overrides:
        shown = ", ".join(f"`{k}`={v}" for k, v in sorted(overrides.items()))
        a.text.append(f"Few-shot cells fine-tune with the grid's settings and {shown}.")
    if unreadable:
        a.text.append(
            "PER scores too few to read: "
            + ", ".join(
                f"{t} ({n} gold PER span{'' if n == 1 else 's'} in its evaluation half)"
                for t, n in unreadable.items()
            )
            + f"; fewer than {st.MIN_SPANS} spans make per-type F1 a coin toss."
        )
    a.text.append(f"**Verdict: {result[0]}.** MAML - vanilla over k > 0: {result[1]}.")
    a.table("Evaluation-half F1 (%) against k: mean and s.d. over draws", rows, files)
    a.figures.append(plots.save(plots.fewshot(curves, base, treat), ctx.fig_dir, "a4_fewshot.png"))
    return a

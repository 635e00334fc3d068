"""Ablation analyses on the evaluation side: particle masking and controlled name
substitution (paper Section 4.2, "targeted ablations ... which we leave for future work").

Both score the same main-grid cells on rewritten copies of the target sets
(``derived/index.json``), so every comparison is paired: the same fine-tuned model, the same
sentences, only the particles or the names differ. Intervals are paired bootstraps over the
target sentences (:mod:`picomaml.study.ablation_stats`), pooled over every vanilla/MAML pair
of the main grid (sizes x regimes x sources x seeds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from picomaml.data.particles import TARGET_LANGUAGE
from picomaml.study import ablation_stats as st
from picomaml.study.analyses import ablation_plots as plots
from picomaml.study.analyses.cells import pair_cells
from picomaml.study.analyses.tables import Analysis, Context, pct
from picomaml.study.records import CellRecord, StudyData

HYPOTHESIS_PARTICLES = (
    "**Paper's hypothesis (Section 4.2):** Tagalog's case particles (*si*, *ni* before "
    "names) are a PER cue the meta-pretrained backbone learned ('particle + token' -> PER)."
)
HYPOTHESIS_NAMES = (
    "**Paper's hypothesis (Section 4.2):** personal names shared verbatim with the English "
    "pretraining corpus (*Obama*, *Manuel*) are why PER transfers where LOC and ORG do not."
)


def system(cells: Sequence[CellRecord], key: str, types: Sequence[str]) -> np.ndarray:
    """Pooled (TP, predicted, gold) counts per sentence of ``cells`` on test set ``key``."""
    total = None
    for c in cells:
        sents = c.sentences[key]
        counts = st.type_counts([s.gold for s in sents], [s.pred for s in sents], types)
        total = counts if total is None else total + counts
    assert total is not None
    return total


def paired_with(data: StudyData, ctx: Context, keys: Sequence[str]) -> list[tuple]:
    """Main-grid (vanilla, MAML) pairs whose cells both hold predictions on every key."""
    pairs = pair_cells(data.main(), ctx.spec.baseline_variant, ctx.spec.treatment_variant)
    return [(b, t) for b, t in pairs if all(k in b.sentences and k in t.sentences for k in keys)]


def _joined(parts: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(list(parts), axis=0)


def _premise_floor(systems: dict[str, np.ndarray], what: str) -> str | None:
    scores = {k: st.f1(v) for k, v in systems.items()}
    if all(v < st.FLOOR for v in scores.values()):
        shown = ", ".join(f"{k} {100 * v:.1f}%" for k, v in scores.items())
        return (
            f"PER F1 {what} is {shown}, below {100 * st.FLOOR:.0f}%: the models find too few "
            "names for the manipulation to act on"
        )
    return None


def _verdict_text(a: Analysis, name: str, result: tuple[str, str]) -> None:
    a.text.append(f"**Verdict: {result[0]}.** {name}: {result[1]}.")


def analysis_particle_ablation(data: StudyData, ctx: Context) -> Analysis:
    """A1. PER F1 and recall with and without the case particles, vanilla vs MAML."""
    a = Analysis("ablation_particles", "Ablation: particle masking")
    index = data.derived.get("particles")
    if not index:
        return a.missing("the grid has no `ablations.particles` section")
    a.text.append(HYPOTHESIS_PARTICLES)
    sets = index["sets"]
    rows, files, diffs, dfiles = [], [], [], []
    by_language: dict[str, list[tuple[str, list[tuple]]]] = {}
    n, seed = ctx.spec.n_resamples, ctx.spec.bootstrap_seed
    for code, entry in sets.items():
        key = entry["key"]
        pairs = paired_with(data, ctx, [code, key])
        if not pairs:
            continue
        by_language.setdefault(TARGET_LANGUAGE[code], []).append((code, pairs))
        masked = entry["changes"]["masked_before_type"].get("PER", 0)
        for side, name in ((0, ctx.spec.baseline_variant), (1, ctx.spec.treatment_variant)):
            cells = [p[side] for p in pairs]
            with_, without = system(cells, code, ["PER"]), system(cells, key, ["PER"])
            rows.append(_particle_row(code, name, len(cells), masked, with_, without, ctx))
            files.append([c.file(f"predictions/{k}.iob2") for c in cells for k in (code, key)])
    if not rows:
        return a.missing(
            "no vanilla/MAML pair of main-grid cells scored on both a target and its particle-"
            "masked copy (`<target>.particles` in results.json)"
        )
    verdict = None
    for language, parts in by_language.items():
        pairs = [p for _, ps in parts for p in ps]
        codes = [c for c, _ in parts]
        quad = []
        for side in (1, 0):
            for suffix in ("", ".particles"):
                quad.append(
                    _joined([system([p[side] for p in ps], c + suffix, ["PER"]) for c, ps in parts])
                )
        dd = st.contrast(quad, [1, -1, -1, 1], n, seed)
        premise = _premise_floor(
            {ctx.spec.baseline_variant: quad[2], ctx.spec.treatment_variant: quad[0]},
            f"on the unmodified {language} sets",
        )
        result = st.verdict(dd, premise)
        diffs.append(
            {
                "language": language,
                "datasets": ", ".join(codes),
                "MAML with - without (pp) [95% CI]": st.contrast(quad[:2], [1, -1], n, seed).text(),
                "vanilla with - without (pp) [95% CI]": st.contrast(
                    quad[2:], [1, -1], n, seed
                ).text(),
                "difference of differences (pp) [95% CI]": dd.text(),
                "verdict": result[0],
            }
        )
        cited = [
            c.file(f"predictions/{code}{suffix}.iob2")
            for code, ps in parts
            for p in ps
            for c in p
            for suffix in ("", ".particles")
        ]
        dfiles.append(cited)
        for (with_, without), name in (
            (quad[2:], ctx.spec.baseline_variant),
            (quad[:2], ctx.spec.treatment_variant),
        ):
            masked = sum(sets[c]["changes"]["masked_before_type"].get("PER", 0) for c in codes)
            dataset, n_cells = (
                f"{language} ({' + '.join(codes)})",
                len({p[0].cell_id for p in pairs}),
            )
            rows.append(_particle_row(dataset, name, n_cells, masked, with_, without, ctx))
            files.append(cited)
        if language == "Tagalog":
            verdict = result
    params = index["params"]
    how = f"replaced by `{params['replacement']}`" if params["mode"] == "replace" else "deleted"
    a.text.append(
        f"Masking `{params['mode']}`: the particle is {how} before every gold entity span of "
        "the configured types; the copies are in `derived/particles/` (manifests "
        "beside them). Statistic: the difference of differences (MAML with - without) - "
        "(vanilla with - without) of PER F1; positive = removing the particles costs MAML more, "
        f"as the hypothesis says. Paired bootstrap over sentences, {n} resamples, seed {seed}."
    )
    _verdict_text(
        a, "Tagalog difference of differences", verdict or st.verdict(None, "no Tagalog target")
    )
    a.table(
        "PER F1 and recall with and without the particles, per target and per language "
        "(cells pooled)",
        rows,
        files,
    )
    a.table("Differences per language (pooled over its targets and every pair)", diffs, dfiles)
    a.figures.append(plots.save(plots.particles(rows), ctx.fig_dir, "a1_particles.png"))
    return a


def _particle_row(
    dataset: str, variant: str, cells: int, masked: int, with_: Any, without: Any, ctx: Context
) -> dict[str, Any]:
    """One row of A1's first table: PER F1 and recall with and without the particles."""
    n, seed = ctx.spec.n_resamples, ctx.spec.bootstrap_seed
    return {
        "dataset": dataset,
        "variant": variant,
        "cells": cells,
        "PER spans after a particle": masked,
        "PER F1 with (%)": pct(st.f1(with_)),
        "PER F1 without (%)": pct(st.f1(without)),
        "PER recall with (%)": pct(st.recall(with_)),
        "PER recall without (%)": pct(st.recall(without)),
        "with - without (pp) [95% CI]": st.contrast([with_, without], [1, -1], n, seed).text(),
    }


def _pool_rows(index: dict[str, Any], ctx: Context) -> list[dict[str, Any]]:
    rows = []
    for name, pool in index["pools"].items():
        words = [*pool["given"], *pool["surnames"]]
        row: dict[str, Any] = {
            "pool": name,
            "given names": len(pool["given"]),
            "surnames": len(pool["surnames"]),
            "file": pool["file"].rsplit("/", 1)[-1],
            "sha256": pool["sha256"][:12],
        }
        if ctx.data is not None and ctx.data.subword_counts is not None:
            counts = ctx.data.subword_counts(words)
            row["subwords per name"] = sum(counts) / len(counts)
        rows.append(row)
    return rows


def analysis_name_ablation(data: StudyData, ctx: Context) -> Analysis:
    """A2. PER F1 with names frequent in the pretraining corpus vs names absent from it."""
    a = Analysis("ablation_names", "Ablation: controlled name substitution")
    index = data.derived.get("names")
    if not index:
        return a.missing("the grid has no `ablations.names` section")
    a.text.append(HYPOTHESIS_NAMES)
    n, seed = ctx.spec.n_resamples, ctx.spec.bootstrap_seed
    codes = list(index["sets"]["frequent"])
    keys = {c: (c, f"{c}.names-frequent", f"{c}.names-unseen") for c in codes}
    rows, files = [], []
    pooled: dict[tuple[int, str], list[np.ndarray]] = {}
    used: list[str] = []
    for code in codes:
        pairs = paired_with(data, ctx, keys[code])
        if not pairs:
            continue
        used += [c.file(f"predictions/{k}.iob2") for p in pairs for c in p for k in keys[code]]
        for side, name in ((0, ctx.spec.baseline_variant), (1, ctx.spec.treatment_variant)):
            cells = [p[side] for p in pairs]
            orig, freq, unseen = (system(cells, k, ["PER"]) for k in keys[code])
            pooled.setdefault((side, "frequent"), []).append(freq)
            pooled.setdefault((side, "unseen"), []).append(unseen)
            rows.append(
                {
                    "dataset": code,
                    "variant": name,
                    "cells": len(cells),
                    "PER spans": int(orig[:, 2].sum() // len(cells)),
                    "PER F1 original (%)": pct(st.f1(orig)),
                    "PER F1 frequent names (%)": pct(st.f1(freq)),
                    "PER F1 unseen names (%)": pct(st.f1(unseen)),
                    "frequent - unseen (pp) [95% CI]": st.contrast(
                        [freq, unseen], [1, -1], n, seed
                    ).text(),
                }
            )
            files.append([c.file(f"predictions/{k}.iob2") for c in cells for k in keys[code]])
    if not rows:
        return a.missing(
            "no vanilla/MAML pair of main-grid cells scored on a target and both name-"
            "substituted copies (`<target>.names-frequent`, `<target>.names-unseen`)"
        )
    sys = {k: _joined(v) for k, v in pooled.items()}
    both_f = sys[(0, "frequent")] + sys[(1, "frequent")]
    both_u = sys[(0, "unseen")] + sys[(1, "unseen")]
    main = st.contrast([both_f, both_u], [1, -1], n, seed)
    dd = st.contrast(
        [sys[(1, "frequent")], sys[(1, "unseen")], sys[(0, "frequent")], sys[(0, "unseen")]],
        [1, -1, -1, 1],
        n,
        seed,
    )
    premise = _premise_floor({"frequent": both_f, "unseen": both_u}, "on the substituted sets")
    result = st.verdict(main, premise)
    a.text.append(
        f"Every gold PER span of the targets is replaced by a name drawn (seed "
        f"{index['params']['seed']}, the same draw for every backbone) from each pool: a "
        "one-word span gets a given name, an n-word span n-1 given names and a surname "
        "(copies in `derived/names/`). Statistic: PER F1 with frequent names minus with unseen "
        "names, all targets and both variants pooled; positive = lexical overlap helps. The "
        "frequent names come from English UNER PER spans, so they may also occur in the "
        "fine-tuning data; the unseen ones occur in neither the corpus nor any UNER source. "
        "Unseen names also split into more subwords (table below), part of what 'unseen' means "
        "to a model with a fixed vocabulary."
    )
    _verdict_text(a, "frequent - unseen PER F1", result)
    a.table("PER F1 on the original and the name-substituted targets (cells pooled)", rows, files)
    summary = [
        {
            "statistic": "frequent - unseen, both variants (pp) [95% CI]",
            "value": main.text(),
            "verdict": result[0],
        },
        {
            "statistic": "(MAML frequent - unseen) - (vanilla frequent - unseen) (pp) [95% CI]",
            "value": dd.text(),
            "verdict": f"MAML relies more on corpus names: {st.verdict(dd, premise)[0]}",
        },
    ]
    a.table("Pooled over all targets and pairs", summary, [used, used])
    pool_rows = _pool_rows(index, ctx)
    a.table("The name pools", pool_rows, [["derived/index.json"]] * len(pool_rows))
    a.figures.append(plots.save(plots.names(rows), ctx.fig_dir, "a3_names.png"))
    return a

"""Analyses 8-9: span statistics of the data, case particles before PER spans, subword splits
and out-of-vocabulary words (paper Tables 4-5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from picomaml.data.registry import SOURCES, TARGETS
from picomaml.study import summary_stats, text_stats
from picomaml.study.analyses.tables import TYPES, Analysis, Context, files_of, pct
from picomaml.study.records import CellRecord, StudyData


def span_stat_rows(named: dict[str, list[list[str]]]) -> list[dict[str, Any]]:
    """One row per (dataset, type): spans and share of single-word spans."""
    rows = []
    for name, tag_seqs in named.items():
        stats = text_stats.span_statistics(tag_seqs)
        for etype in TYPES:
            s = stats[etype]
            rows.append(
                {
                    "dataset": name,
                    "type": etype,
                    "spans": s["spans"],
                    "single-word (%)": pct(s["single_share"]) if s["spans"] else None,
                }
            )
    return rows


def analysis_span_stats(data: StudyData, ctx: Context) -> Analysis:
    """8. Spans per type and share of single-word spans (Table 4) for sources and targets."""
    a = Analysis("spans", "Span statistics of the fine-tuning and target data")
    if ctx.data is None:
        return a.missing("no data root available (pass --data-dir)")
    sources = sorted({c.source for c in data.cells if c.source and c.source != "all"})
    named: dict[str, list[list[str]]] = {}
    for code in sources:
        named[f"{code} train"] = [tags for _, tags in ctx.data.sentences(code, "train")]
    for code in TARGETS:
        named[f"{code} test"] = [tags for _, tags in ctx.data.sentences(code, "test")]
    rows = span_stat_rows(named)
    files = [[f"data: {r['dataset']}"] for r in rows]
    a.table("Gold spans per type (conlleval reading of IOB2)", rows, files)
    return a


def particle_recall(
    cells: Sequence[CellRecord], dataset: str, particles: Sequence[str]
) -> dict[str, Any] | None:
    """Share of gold PER spans preceded by a particle and each cell's exact-match recall on
    particle-preceded vs other PER spans (mean and s.d. over ``cells``)."""
    with_sents = [c for c in cells if dataset in c.sentences]
    if not with_sents:
        return None
    gold_flags = [
        text_stats.particle_spans(s.tokens, s.gold, particles)
        for s in with_sents[0].sentences[dataset]
    ]
    n_spans = sum(len(f) for f in gold_flags)
    n_part = sum(flag for f in gold_flags for _, flag in f)
    rec_p, rec_o = [], []
    for c in with_sents:
        part_hits, part_n, other_hits, other_n = 0, 0, 0, 0
        for s, flags in zip(c.sentences[dataset], gold_flags, strict=True):
            pred = set(text_stats.spans(s.pred))
            for span, flag in flags:
                if flag:
                    part_n += 1
                    part_hits += span in pred
                else:
                    other_n += 1
                    other_hits += span in pred
        if part_n:
            rec_p.append(part_hits / part_n)
        if other_n:
            rec_o.append(other_hits / other_n)
    return {
        "per_spans": n_spans,
        "particle_share": n_part / n_spans if n_spans else None,
        "recall_particle": (summary_stats.mean(rec_p), summary_stats.std(rec_p)),
        "recall_other": (summary_stats.mean(rec_o), summary_stats.std(rec_o)),
        "cells": len(with_sents),
    }


def analysis_particles(data: StudyData, ctx: Context) -> Analysis:
    """9. Particles before PER spans, recall on them; subword splits; OOV (Table 5)."""
    a = Analysis("particles", "Case particles, subword splits and out-of-vocabulary words")
    rows, files = [], []
    for t in TARGETS:
        particles = ctx.spec.particles.get(t)
        if not particles:
            continue
        for variant in sorted({c.variant for c in data.main()}):
            cells = [c for c in data.main() if c.variant == variant]
            r = particle_recall(cells, t, particles)
            if r is None:
                continue
            (mpart, spart), (moth, soth) = r["recall_particle"], r["recall_other"]
            rows.append(
                {
                    "dataset": t,
                    "variant": variant,
                    "particles": ", ".join(particles),
                    "gold PER spans": r["per_spans"],
                    "preceded by particle (%)": pct(r["particle_share"]),
                    "recall after particle (%)": pct(mpart),
                    "s.d. (pp)": pct(spart),
                    "recall elsewhere (%)": pct(moth),
                    "s.d. (pp) ": pct(soth),
                    "cells": r["cells"],
                }
            )
            files.append(files_of([c for c in cells if t in c.sentences], f"predictions/{t}.iob2"))
    if rows:
        a.table(
            "PER spans directly preceded by a personal case particle; recall = exact span "
            "match, mean and s.d. over main-grid cells of the variant",
            rows,
            files,
        )
    if ctx.data is None:
        a.text.append("Subword and OOV statistics not available: no data root (pass --data-dir).")
    else:
        vrows, vfiles = vocabulary_rows(data, ctx)
        if vrows:
            a.table(
                "Subword splits and OOV rate of the targets (word types, casefolded)",
                vrows,
                vfiles,
            )
    if not a.tables:
        return a.missing("no predictions/{target}.iob2 files and no data root")
    return a


def vocabulary_rows(data: StudyData, ctx: Context) -> tuple[list[dict], list[list[str]]]:
    """Per target: share of words split into 2+ subwords, and OOV rate per fine-tuning source."""
    assert ctx.data is not None
    sources = sorted({c.source for c in data.cells if c.source})
    vocab: dict[str, set[str]] = {}
    for s in sources:
        codes = SOURCES if s == "all" else (s,)
        vocab[s] = {
            w.casefold()
            for code in codes
            for toks, _ in ctx.data.sentences(code, "train")
            for w in toks
        }
    rows, files = [], []
    for t in TARGETS:
        sents = ctx.data.sentences(t, "test")
        words = [w for toks, _ in sents for w in toks]
        row: dict[str, Any] = {"dataset": t, "words": len(words)}
        if ctx.data.subword_counts is not None:
            counts = [c for toks, _ in sents for c in ctx.data.subword_counts(toks)]
            row["split into 2+ subwords (%)"] = pct(text_stats.split_share(counts))
        for s in sources:
            row[f"OOV vs {s} (%)"] = pct(text_stats.oov_rate(words, vocab[s]))
        rows.append(row)
        files.append([f"data: {t} test", *(f"data: {s} train" for s in sources)])
    return rows, files

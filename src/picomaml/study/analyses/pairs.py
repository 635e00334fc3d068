"""Analyses 10-11: case studies of one vanilla/MAML pair (Appendix B) and whether the paired
differences are distinguishable from noise.
"""

from __future__ import annotations

from collections import defaultdict

from picomaml import layout
from picomaml.data.registry import TARGETS
from picomaml.ner.metrics import paired_bootstrap
from picomaml.study import summary_stats, text_stats
from picomaml.study.analyses import plots
from picomaml.study.analyses.cells import pair_cells, sizes_of
from picomaml.study.analyses.tables import Analysis, Context, pct
from picomaml.study.records import CellRecord, StudyData


def _aligned(b: CellRecord, t: CellRecord, dataset: str) -> bool:
    sb, st = b.sentences.get(dataset), t.sentences.get(dataset)
    return bool(
        sb
        and st
        and b.has_confidence.get(dataset)
        and t.has_confidence.get(dataset)
        and len(sb) == len(st)
        and all(x.tokens == y.tokens for x, y in zip(sb, st, strict=True))
    )


def choose_case_pair(data: StudyData, ctx: Context) -> tuple[CellRecord, CellRecord] | None:
    """The vanilla/MAML pair the case studies use: the configured one, else the first
    (largest size first) with confidence files on every target."""
    spec = ctx.spec.case_study
    pairs = [
        p
        for p in pair_cells(data.main(), ctx.spec.baseline_variant, ctx.spec.treatment_variant)
        if all(_aligned(p[0], p[1], t) for t in TARGETS)
    ]
    for b, t in pairs:
        if (
            (spec.size is None or b.size == spec.size)
            and (spec.regime is None or b.regime == spec.regime)
            and (spec.source is None or b.source == spec.source)
            and (spec.seed is None or b.seed == spec.seed)
        ):
            return b, t
    if not pairs:
        return None
    sizes, _ = sizes_of([p[0] for p in pairs])
    return sorted(pairs, key=lambda p: -sizes.index(p[0].size))[0]


def word_deltas(b: CellRecord, t: CellRecord, dataset: str) -> list[list[float]]:
    """Per sentence, per word: log p_MAML(gold) - log p_vanilla(gold)."""
    return [
        text_stats.log_p_deltas(x.p_gold, y.p_gold)  # type: ignore[arg-type]
        for x, y in zip(b.sentences[dataset], t.sentences[dataset], strict=True)
    ]


def analysis_cases(data: StudyData, ctx: Context) -> Analysis:
    """10. Case studies: per-word change in log p(gold) vanilla -> MAML (Appendix B)."""
    a = Analysis("cases", "Case studies: where MAML gains and loses confidence")
    pair = choose_case_pair(data, ctx)
    if pair is None:
        return a.missing(
            "no vanilla/MAML main-grid pair with confidence files on all three targets"
        )
    b, t = pair
    a.text.append(
        f"Pair: `{b.rel}` (vanilla) vs `{t.rel}` (MAML). Delta = log p_MAML(gold tag) - "
        "log p_vanilla(gold tag) per word; positive = MAML more confident (the paper's "
        "surprisal change with the sign flipped)."
    )
    word_acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    sent_rows = []
    for ds in TARGETS:
        deltas = word_deltas(b, t, ds)
        for s, d in zip(t.sentences[ds], deltas, strict=True):
            for w, g, x in zip(s.tokens, s.gold, d, strict=True):
                word_acc[(w, g)].append(x)
            sent_rows.append((ds, s, d, sum(d)))
    words = [
        {"word": w, "gold": g, "occurrences": len(v), "mean delta log p": summary_stats.mean(v)}
        for (w, g), v in word_acc.items()
    ]
    words.sort(key=lambda r: (-r["mean delta log p"], r["word"]))
    k = ctx.spec.top_words
    cite = [[c.file(layout.confidence_file(ds)) for c in (b, t) for ds in TARGETS]]
    top = words[:k] + words[-k:] if len(words) > 2 * k else words
    a.table(
        "Words with the largest gains (top) and losses (bottom), all targets",
        top,
        cite * len(top),
    )
    sent_rows.sort(key=lambda r: -r[3])
    n = ctx.spec.case_study.n_sentences
    chosen = sent_rows[:n] + sent_rows[-n:] if len(sent_rows) > 2 * n else sent_rows
    srows = []
    for ds, s, d, total in chosen:
        marked = " ".join(
            f"{w}[{g}]" if g != "O" else w for w, g in zip(s.tokens, s.gold, strict=True)
        )
        big = sorted(zip(s.tokens, d, strict=True), key=lambda x: -abs(x[1]))[:3]
        srows.append(
            {
                "dataset": ds,
                "sent_id": s.sent_id,
                "sum delta log p": total,
                "sentence (gold tags)": marked,
                "largest word changes": ", ".join(f"{w} {x:+.2f}" for w, x in big),
            }
        )
    a.table(
        "Sentences with the largest total gain and loss",
        srows,
        [
            [
                b.file(layout.confidence_file(r["dataset"])),
                t.file(layout.confidence_file(r["dataset"])),
            ]
            for r in srows
        ],
    )
    best, worst = sent_rows[0], sent_rows[-1]
    a.figures.append(plots.save(plots.cases(best, worst), ctx.fig_dir, "10_cases.png"))
    return a


def pooled_targets(cell: CellRecord) -> tuple[list[list[str]], list[list[str]]] | None:
    """(gold, pred) over the concatenated target sets; None if any target lacks predictions."""
    if not all(ds in cell.sentences for ds in TARGETS):
        return None
    gold = [s.gold for ds in TARGETS for s in cell.sentences[ds]]
    pred = [s.pred for ds in TARGETS for s in cell.sentences[ds]]
    return gold, pred


def analysis_paired(data: StudyData, ctx: Context) -> Analysis:
    """11. Paired MAML - vanilla differences with bootstrap and across-seed/source intervals."""
    a = Analysis("paired", "Is the difference distinguishable from noise?")
    spec = ctx.spec
    pairs = pair_cells(data.main(), spec.baseline_variant, spec.treatment_variant)
    rows, files = [], []
    for b, t in pairs:
        pb, pt = pooled_targets(b), pooled_targets(t)
        if pb is None or pt is None or pb[0] != pt[0]:
            continue
        res = paired_bootstrap(pb[0], pb[1], pt[1], spec.n_resamples, spec.bootstrap_seed)
        lo, hi = res["delta_ci95"]
        rows.append(
            {
                "size": b.size,
                "regime": b.regime,
                "source": b.source,
                "seed": b.seed,
                "vanilla F1": pct(res["f1_a"]),
                "MAML F1": pct(res["f1_b"]),
                "delta (pp)": pct(res["delta"]),
                "95% CI (pp)": f"[{100 * lo:+.1f}, {100 * hi:+.1f}]",
                "verdict": summary_stats.verdict(lo, hi),
                "_lo": lo,
                "_hi": hi,
            }
        )
        files.append(
            [x for c in (b, t) for x in (c.file(f"predictions/{ds}.iob2") for ds in TARGETS)]
        )
    if not rows:
        return a.missing("no vanilla/MAML pair with predictions on all three targets")
    a.text.append(
        f"Per pair: paired bootstrap over sentences of the three target sets pooled "
        f"({spec.n_resamples} resamples, seed {spec.bootstrap_seed}); the same resampled "
        "sentences score both models, so shared difficulty cancels. Pooled micro-F1 can "
        "differ slightly from the mean of per-set F1 used in the other tables."
    )
    summary, sfiles = [], []
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[(r["size"], r["regime"])].append(i)
    sizes, _ = sizes_of([p[0] for p in pairs])
    for (size, regime), idx in sorted(
        groups.items(),
        key=lambda kv: (sizes.index(kv[0][0]) if kv[0][0] in sizes else 99, kv[0][1]),
    ):
        deltas = [rows[i]["delta (pp)"] for i in idx]
        ti = summary_stats.t_interval(deltas)
        summary.append(
            {
                "size": size,
                "regime": regime,
                "pairs": len(idx),
                "mean delta (pp)": summary_stats.mean(deltas),
                "95% t-interval across pairs (pp)": "n/a (1 pair)"
                if ti is None
                else f"[{ti[1]:+.1f}, {ti[2]:+.1f}]",
                "pairs CI > 0": sum(rows[i]["_lo"] > 0 for i in idx),
                "pairs CI < 0": sum(rows[i]["_hi"] < 0 for i in idx),
                "verdict": summary_stats.verdict(*(ti[1:] if ti else (None, None))),
            }
        )
        sfiles.append([f for i in idx for f in files[i]])
    a.table("Summary per size and regime (pairs = sources x seeds)", summary, sfiles)
    seed_rows, seed_files = [], []
    by_cfg: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_cfg[(r["size"], r["regime"], r["source"])].append(i)
    for (size, regime, source), idx in sorted(by_cfg.items()):
        if len(idx) < 2:
            continue
        ti = summary_stats.t_interval([rows[i]["delta (pp)"] for i in idx])
        assert ti is not None
        seed_rows.append(
            {
                "size": size,
                "regime": regime,
                "source": source,
                "seeds": len(idx),
                "mean delta (pp)": ti[0],
                "95% t-interval (pp)": f"[{ti[1]:+.1f}, {ti[2]:+.1f}]",
                "verdict": summary_stats.verdict(ti[1], ti[2]),
            }
        )
        seed_files.append([f for i in idx for f in files[i]])
    if seed_rows:
        a.table("Across-seed intervals", seed_rows, seed_files)
    else:
        a.text.append(
            "Across-seed intervals not available: every configuration has one seed "
            "(add seeds to the grid's `seeds:` list)."
        )
    shown = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    a.table("Every pair", shown, files)
    a.figures.append(plots.save(plots.paired(rows), ctx.fig_dir, "11_paired.png"))
    return a

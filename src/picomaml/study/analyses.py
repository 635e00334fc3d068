"""The study's analyses (paper Sections 3-5, Appendices B and D).

Each ``analysis_*`` function maps loaded records (:class:`StudyData`) to an
:class:`Analysis`: tables (rows of plain values, each row citing the result files
it was computed from), PNG figures written with matplotlib's Agg backend, and short
text. When the data an analysis needs is absent, it returns ``unavailable`` with
the reason instead of a figure: the report never fakes a number.

Conventions: F1 is entity-level micro-F1 in seqeval's default mode, shown in
percent; "zero-shot F1" of a cell is the mean of its micro-F1 on the three targets
(tl_trg, tl_ugnayan, ceb_gja); MAML and vanilla are compared on *paired* cells
(same size, regime, source, seed and checkpoint step), so a failed cell removes its
pair instead of biasing a mean.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from picomaml.config import parse_yaml  # noqa: E402
from picomaml.study import metrics_pure as mp  # noqa: E402
from picomaml.study.config import AnalysisSpec  # noqa: E402
from picomaml.study.records import (  # noqa: E402
    TARGETS,
    CellRecord,
    StudyData,
    pretrain_run_dir,
)

SIZE_ORDER = {"tiny": 0, "small": 1, "medium": 2, "large": 3}
TYPES = ("PER", "LOC", "ORG")
TARGET_NAMES = {"tl_trg": "Tagalog TRG", "tl_ugnayan": "Tagalog Ugnayan", "ceb_gja": "Cebuano GJA"}
BASE_COLOR, TREAT_COLOR = "#4daf4a", "#377eb8"  # the paper's green (vanilla) / blue (MAML)


@dataclass
class Table:
    """A result table; ``files[i]`` lists the result files behind ``rows[i]``."""

    caption: str
    columns: list[str]
    rows: list[dict[str, Any]]
    files: list[list[str]] = field(default_factory=list)


@dataclass
class Analysis:
    """What one analysis produced (or why it could not)."""

    key: str
    title: str
    tables: list[Table] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    unavailable: str | None = None


@dataclass
class Context:
    """Where figures go and the knobs; ``data`` gives dataset tag/word access (None: offline
    analyses that need the raw data are reported unavailable)."""

    results_dir: Path
    spec: AnalysisSpec = field(default_factory=AnalysisSpec)
    data: DataAccess | None = None

    @property
    def fig_dir(self) -> Path:
        """``RESULTS_DIR/figures`` (created on demand)."""
        d = self.results_dir / "figures"
        d.mkdir(parents=True, exist_ok=True)
        return d


@dataclass
class DataAccess:
    """Access to raw datasets for analyses 8-9, injected so tests need no data root.

    ``sentences(code, split)`` returns ``[(tokens, tags)]``; ``subword_counts(words)``
    returns the number of subwords of each word as the model sees it in running text.
    """

    sentences: Callable[[str, str], list[tuple[list[str], list[str]]]]
    subword_counts: Callable[[list[str]], list[int]] | None = None


# --- helpers -----------------------------------------------------------------------------


def zero_shot_f1(cell: CellRecord) -> float | None:
    """Mean micro-F1 over the three zero-shot targets; None unless all three were scored."""
    vals = [cell.f1(t) for t in TARGETS]
    if any(v is None for v in vals):
        return None
    return sum(vals) / len(vals)  # type: ignore[arg-type]


def param_count(cell: CellRecord) -> int | None:
    """Backbone parameter count from the config recorded in ``run.json``."""
    cfg = cell.run.get("backbone_config")
    if not isinstance(cfg, dict):
        return None
    from picomaml.model import PicoConfig, count_parameters

    try:
        counts = count_parameters(PicoConfig(**cfg))
    except TypeError:
        return None
    return int(counts["total"]) if isinstance(counts, dict) else int(counts)


def size_sort_key(size: str, params: dict[str, int | None]) -> tuple[int, int, str]:
    """Order sizes tiny < small < medium < large, others by parameter count."""
    return (SIZE_ORDER.get(size, 99), params.get(size) or 0, size)


def pair_cells(
    cells: Iterable[CellRecord], base: str, treat: str
) -> list[tuple[CellRecord, CellRecord]]:
    """(vanilla, MAML) cells that differ only in the pretraining variant."""
    by_key: dict[tuple, dict[str, CellRecord]] = defaultdict(dict)
    for c in cells:
        key = (c.kind, c.size, c.regime, c.source, c.seed, c.step if c.kind == "sweep" else None)
        by_key[key][c.variant] = c
    return [(v[base], v[treat]) for _, v in sorted(by_key.items()) if base in v and treat in v]


def pct(x: float | None) -> float | None:
    """Fraction -> percent (None stays None)."""
    return None if x is None else 100.0 * x


def _files(cells: Iterable[CellRecord], name: str = "results.json") -> list[str]:
    return [c.file(name) for c in cells]


def _save(fig: Any, ctx: Context, name: str) -> str:
    path = ctx.fig_dir / name
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"figures/{name}"


def _sizes(cells: Sequence[CellRecord]) -> tuple[list[str], dict[str, int | None]]:
    params: dict[str, int | None] = {}
    for c in cells:
        if params.get(c.size) is None:
            params[c.size] = param_count(c)
    return sorted(params, key=lambda s: size_sort_key(s, params)), params


def _paired_zero_shot(ctx: Context, cells: Sequence[CellRecord]) -> list[tuple]:
    """(base, treat, zs_base, zs_treat) for pairs where both have all three targets."""
    out = []
    for b, t in pair_cells(cells, ctx.spec.baseline_variant, ctx.spec.treatment_variant):
        zb, zt = zero_shot_f1(b), zero_shot_f1(t)
        if zb is not None and zt is not None:
            out.append((b, t, zb, zt))
    return out


def _no_pairs_reason(ctx: Context, cells: Sequence[CellRecord], what: str) -> str:
    variants = sorted({c.variant for c in cells})
    return (
        f"no {what} with both a '{ctx.spec.baseline_variant}' and a "
        f"'{ctx.spec.treatment_variant}' cell scored on all three targets "
        f"(variants present: {variants or 'none'})"
    )


# --- 1-3: zero-shot F1 by size, regime, source ---------------------------------------------


def analysis_scale(data: StudyData, ctx: Context) -> Analysis:
    """1. Zero-shot F1 vs parameter count, vanilla vs MAML, with the relative gain (Fig. 1)."""
    a = Analysis("scale", "Scale curve: zero-shot F1 on Tagalog + Cebuano vs parameter count")
    pairs = _paired_zero_shot(ctx, data.main())
    if not pairs:
        a.unavailable = _no_pairs_reason(ctx, data.main(), "main-grid pairs")
        return a
    sizes, params = _sizes([p[0] for p in pairs])
    rows, files = [], []
    for size in sizes:
        sel = [p for p in pairs if p[0].size == size]
        mb, mt = mp.mean([p[2] for p in sel]), mp.mean([p[3] for p in sel])
        rel = mp.relative_gain(mb, mt)
        rows.append(
            {
                "size": size,
                "parameters": params.get(size),
                "pairs": len(sel),
                "vanilla F1": pct(mb),
                "MAML F1": pct(mt),
                "delta (pp)": pct(mt - mb),  # type: ignore[operator]
                "relative gain (%)": pct(rel),
            }
        )
        files.append(_files([c for p in sel for c in p[:2]]))
    a.tables.append(
        Table(
            "Zero-shot F1 (%), mean over paired cells (regimes x sources x seeds) per size",
            list(rows[0]),
            rows,
            files,
        )
    )
    all_pairs = pair_cells(data.main(), ctx.spec.baseline_variant, ctx.spec.treatment_variant)
    codes = sorted(
        {d for b, t in all_pairs for d in b.datasets if d in t.datasets},
        key=lambda d: (TARGETS.index(d) if d in TARGETS else len(TARGETS), d),
    )
    drows, dfiles = [], []
    for code in codes:
        sel = [(b, t) for b, t in all_pairs if code in b.datasets and code in t.datasets]
        mb = mp.mean([b.f1(code) for b, _ in sel])  # type: ignore[misc]
        mt = mp.mean([t.f1(code) for _, t in sel])  # type: ignore[misc]
        drows.append(
            {
                "dataset": code,
                "pairs": len(sel),
                "vanilla F1": pct(mb),
                "MAML F1": pct(mt),
                "delta (pp)": pct(mt - mb),  # type: ignore[operator]
            }
        )
        dfiles.append(_files([c for p in sel for c in p]))
    a.tables.append(
        Table(
            "Every evaluated test set: micro-F1 (%), mean over paired cells of all sizes",
            list(drows[0]),
            drows,
            dfiles,
        )
    )
    fig, ax = plt.subplots(figsize=(7, 4))
    x = range(len(rows))
    w = 0.38
    ax.bar(
        [i - w / 2 for i in x],
        [r["vanilla F1"] for r in rows],
        w,
        label="vanilla",
        color=BASE_COLOR,
    )
    ax.bar([i + w / 2 for i in x], [r["MAML F1"] for r in rows], w, label="MAML", color=TREAT_COLOR)
    ax.set_xticks(list(x))
    ax.set_xlim(-0.75, len(rows) - 0.25)
    ax.set_xticklabels([_size_label(r["size"], r["parameters"]) for r in rows])
    ax.set_ylabel("zero-shot micro-F1 (%)\nmean of tl_trg, tl_ugnayan, ceb_gja")
    ax2 = ax.twinx()
    gains = [r["relative gain (%)"] for r in rows]
    ax2.plot(
        list(x),
        [g if g is not None else math.nan for g in gains],
        "o-",
        color="black",
        label="relative gain",
    )
    ax2.axhline(0, color="grey", lw=0.8, ls=":")
    ax2.set_ylabel("relative gain of MAML (%)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    ax.set_title("Zero-shot F1 vs model size")
    a.figures.append(_save(fig, ctx, "1_scale.png"))
    return a


def _size_label(size: str, params: int | None) -> str:
    return f"{size}\n{params / 1e6:.1f}M" if params else size


def analysis_regime(data: StudyData, ctx: Context) -> Analysis:
    """2. Head-only vs full fine-tuning, per size (Fig. 2)."""
    a = Analysis("regime", "Fine-tuning regime: head-only vs full, per size")
    pairs = _paired_zero_shot(ctx, data.main())
    if not pairs:
        a.unavailable = _no_pairs_reason(ctx, data.main(), "main-grid pairs")
        return a
    sizes, params = _sizes([p[0] for p in pairs])
    regimes = [r for r in ("head", "full") if any(p[0].regime == r for p in pairs)]
    rows, files = [], []
    for regime in regimes:
        for size in sizes:
            sel = [p for p in pairs if p[0].size == size and p[0].regime == regime]
            if not sel:
                continue
            mb, mt = mp.mean([p[2] for p in sel]), mp.mean([p[3] for p in sel])
            rows.append(
                {
                    "regime": regime,
                    "size": size,
                    "pairs": len(sel),
                    "vanilla F1": pct(mb),
                    "MAML F1": pct(mt),
                    "delta (pp)": pct(mt - mb),  # type: ignore[operator]
                }
            )
            files.append(_files([c for p in sel for c in p[:2]]))
    a.tables.append(Table("Zero-shot F1 (%) by regime and size", list(rows[0]), rows, files))
    fig, axes = plt.subplots(
        1, len(regimes), figsize=(5 * len(regimes), 4), sharey=True, squeeze=False
    )
    for ax, regime in zip(axes[0], regimes, strict=True):
        sub = [r for r in rows if r["regime"] == regime]
        x = range(len(sub))
        w = 0.38
        ax.bar(
            [i - w / 2 for i in x],
            [r["vanilla F1"] for r in sub],
            w,
            color=BASE_COLOR,
            label="vanilla",
        )
        ax.bar(
            [i + w / 2 for i in x], [r["MAML F1"] for r in sub], w, color=TREAT_COLOR, label="MAML"
        )
        for i, r in enumerate(sub):
            top = max(r["vanilla F1"], r["MAML F1"])
            ax.annotate(
                f"{r['delta (pp)']:+.1f} pp", (i, top), ha="center", va="bottom", fontsize=8
            )
        ax.set_xticks(list(x))
        ax.set_xticklabels([_size_label(r["size"], params.get(r["size"])) for r in sub])
        ax.set_title(f"{regime} fine-tuning")
        ax.set_ylabel("zero-shot micro-F1 (%)")
        ax.legend(fontsize=8)
    a.figures.append(_save(fig, ctx, "2_regime.png"))
    return a


def analysis_sources(data: StudyData, ctx: Context) -> Analysis:
    """3. MAML - vanilla per fine-tuning source (Fig. 3)."""
    a = Analysis("sources", "Sensitivity to the fine-tuning language: MAML - vanilla per source")
    pairs = _paired_zero_shot(ctx, data.main())
    if not pairs:
        a.unavailable = _no_pairs_reason(ctx, data.main(), "main-grid pairs")
        return a
    sizes, params = _sizes([p[0] for p in pairs])
    sources = sorted({p[0].source for p in pairs}, key=lambda s: (s == "all", s))
    rows, files = [], []
    for source in sources:
        sel = [p for p in pairs if p[0].source == source]
        mb, mt = mp.mean([p[2] for p in sel]), mp.mean([p[3] for p in sel])
        row: dict[str, Any] = {
            "source": source,
            "pairs": len(sel),
            "vanilla F1": pct(mb),
            "MAML F1": pct(mt),
            "delta (pp)": pct(mt - mb),  # type: ignore[operator]
            "relative gain (%)": pct(mp.relative_gain(mb, mt)),
        }
        for size in sizes:
            ss = [p for p in sel if p[0].size == size]
            row[f"delta {size}"] = pct(mp.mean([p[3] - p[2] for p in ss])) if ss else None
        rows.append(row)
        files.append(_files([c for p in sel for c in p[:2]]))
    a.tables.append(
        Table(
            "Zero-shot F1 (%) per fine-tuning source, mean over sizes x regimes x seeds; "
            "delta <size> = MAML - vanilla (pp) at that size",
            list(rows[0]),
            rows,
            files,
        )
    )
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(sources) + 2), 4))
    n = len(sizes)
    w = 0.8 / max(n, 1)
    cmap = plt.get_cmap("viridis")
    for k, size in enumerate(sizes):
        vals = [r[f"delta {size}"] for r in rows]
        xs = [i - 0.4 + w * (k + 0.5) for i in range(len(rows))]
        ax.bar(
            xs,
            [v if v is not None else 0 for v in vals],
            w,
            label=size,
            color=cmap(k / max(n - 1, 1)),
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["source"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("MAML - vanilla zero-shot F1 (pp)")
    ax.set_title("Zero-shot gain of MAML by fine-tuning source")
    ax.legend(title="size", fontsize=8)
    a.figures.append(_save(fig, ctx, "3_sources.png"))
    return a


# --- 4-6: checkpoint sweeps ----------------------------------------------------------------


def sweep_groups(cells: Iterable[CellRecord]) -> dict[tuple, list[CellRecord]]:
    """Sweep cells grouped by (variant, size, regime, source, seed), sorted by step."""
    groups: dict[tuple, list[CellRecord]] = defaultdict(list)
    for c in cells:
        if c.kind == "sweep" and c.step is not None:
            groups[(c.variant, c.size, c.regime, c.source, c.seed)].append(c)
    return {k: sorted(v, key=lambda c: c.step) for k, v in sorted(groups.items())}  # type: ignore[arg-type, return-value]


def final_train_loss(cell: CellRecord) -> float | None:
    """Last logged fine-tuning train loss."""
    _, losses = mp.train_curve(cell.train_log)
    return losses[-1] if losses else None


def source_dev_f1(cell: CellRecord) -> float | None:
    """Best source dev F1 (the early-stopping criterion), from run.json or the log."""
    if cell.run.get("best_dev_f1") is not None:
        return float(cell.run["best_dev_f1"])
    devs = [float(r["f1"]) for r in cell.train_log if r.get("kind") == "dev"]
    return max(devs) if devs else None


def _group_name(key: tuple) -> str:
    variant, size, regime, source, seed = key
    return f"{variant}-{size}-{regime}-{source}-s{seed}"


def analysis_sweep(data: StudyData, ctx: Context) -> Analysis:
    """4. Final train loss, source dev F1 and target F1 vs pretraining step (Fig. 5)."""
    a = Analysis("sweep", "Checkpoint sweep: fine-tuning outcome vs pretraining step")
    groups = sweep_groups(data.sweep())
    if not groups:
        a.unavailable = "the grid had no checkpoint sweep (add a `sweeps:` entry to the grid)"
        return a
    rows, files = [], []
    for key, cells in groups.items():
        for c in cells:
            rows.append(
                {
                    "run": _group_name(key),
                    "step": c.step,
                    "final train loss": final_train_loss(c),
                    "source dev F1": pct(source_dev_f1(c)),
                    **{f"{t} F1": pct(c.f1(t)) for t in TARGETS},
                }
            )
            files.append([c.file("results.json"), c.file("train_log.jsonl")])
    a.tables.append(Table("Per checkpoint (F1 in %)", list(rows[0]), rows, files))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    styles = ["-", "--", ":", "-."]
    colors = {
        "source dev F1": "#1f77b4",
        "tl_trg F1": "#2ca02c",
        "tl_ugnayan F1": "#17becf",
        "ceb_gja F1": "#ffbf00",
    }
    for g, key in enumerate(groups):
        sub = [r for r in rows if r["run"] == _group_name(key)]
        ls = styles[g % len(styles)]
        steps = [r["step"] for r in sub]
        ax1.plot(
            steps,
            [_nan(r["final train loss"]) for r in sub],
            ls,
            marker="o",
            ms=3,
            label=_group_name(key),
        )
        for col, color in colors.items():
            ax2.plot(
                steps,
                [_nan(r[col]) for r in sub],
                ls,
                marker="o",
                ms=3,
                color=color,
                label=f"{col.replace(' F1', '')} ({key[0]})",
            )
    ax1.set_ylabel("final fine-tuning train loss")
    ax1.legend(fontsize=7)
    ax2.set_ylabel("micro-F1 (%)")
    ax2.set_xlabel("pretraining step of the backbone checkpoint")
    ax2.legend(fontsize=7, ncol=2)
    ax1.set_title("Fine-tuning from each pretraining checkpoint")
    a.figures.append(_save(fig, ctx, "4_sweep.png"))
    return a


def _nan(v: float | None) -> float:
    return math.nan if v is None else v


def analysis_types(data: StudyData, ctx: Context) -> Analysis:
    """5. Per-type F1 (PER, LOC, ORG) on each target across checkpoints (Fig. 6)."""
    a = Analysis("types", "Per-type F1 across pretraining checkpoints")
    groups = sweep_groups(data.sweep())
    if not groups:
        a.unavailable = "the grid had no checkpoint sweep (add a `sweeps:` entry to the grid)"
        return a
    rows, files = [], []
    for key, cells in groups.items():
        for c in cells:
            for t in TARGETS:
                if t not in c.datasets:
                    continue
                rows.append(
                    {
                        "run": _group_name(key),
                        "step": c.step,
                        "dataset": t,
                        **{f"{e} F1": pct(c.type_f1(t, e)) for e in TYPES},
                    }
                )
                files.append([c.file("results.json")])
    if not rows:
        a.unavailable = "sweep cells have no target-set results"
        return a
    a.tables.append(Table("Per-type F1 (%) per checkpoint and target", list(rows[0]), rows, files))
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(13, 3.8), sharey=True)
    cmap = plt.get_cmap("viridis")
    styles = ["-", "--", ":", "-."]
    for ax, t in zip(axes, TARGETS, strict=True):
        for g, key in enumerate(groups):
            sub = [r for r in rows if r["run"] == _group_name(key) and r["dataset"] == t]
            for k, e in enumerate(TYPES):
                ax.plot(
                    [r["step"] for r in sub],
                    [_nan(r[f"{e} F1"]) for r in sub],
                    styles[g % 4],
                    marker="o",
                    ms=3,
                    color=cmap(k / 2.5),
                    label=f"{e} ({key[0]})",
                )
        ax.set_title(TARGET_NAMES[t])
        ax.set_xlabel("pretraining step")
    axes[0].set_ylabel("F1 (%)")
    axes[-1].legend(fontsize=7)
    a.figures.append(_save(fig, ctx, "5_types.png"))
    return a


def confidence_matrix(
    cells: Sequence[CellRecord], dataset: str, k: int, entity: bool
) -> tuple[list[str], list[list[float | None]]] | None:
    """(words, matrix[word][checkpoint]) of mean p(gold) for the k most frequent entity or
    non-entity words of ``dataset``; None when a checkpoint lacks confidence scores."""
    if not cells or not all(c.has_confidence.get(dataset) for c in cells):
        return None
    first = cells[0].sentences[dataset]
    words = mp.top_words(((s.tokens, s.gold) for s in first), k, entity)
    matrix: list[list[float | None]] = [[] for _ in words]
    for c in cells:
        conf = mp.mean_word_confidence(
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
        a.unavailable = "the grid had no checkpoint sweep (add a `sweeps:` entry to the grid)"
        return a
    k = ctx.spec.top_words
    for key, cells in groups.items():
        mats = {
            (t, ent): confidence_matrix(cells, t, k, ent) for t in TARGETS for ent in (True, False)
        }
        avail = {kk: v for kk, v in mats.items() if v is not None and v[0]}
        if not avail:
            continue
        steps = [c.step for c in cells]
        fig, axes = plt.subplots(
            len(TARGETS),
            2,
            figsize=(max(8, 0.45 * len(steps) * 2 + 4), 3.2 * len(TARGETS)),
            squeeze=False,
        )
        rows, files = [], []
        for i, t in enumerate(TARGETS):
            for j, ent in enumerate((True, False)):
                ax = axes[i][j]
                m = mats[(t, ent)]
                label = "entity words" if ent else "non-entity words"
                if m is None or not m[0]:
                    ax.set_axis_off()
                    ax.set_title(f"{TARGET_NAMES[t]}, {label}: no confidence data", fontsize=8)
                    continue
                words, matrix = m
                img = ax.imshow(
                    [[_nan(v) for v in row] for row in matrix],
                    aspect="auto",
                    vmin=0,
                    vmax=1,
                    cmap="viridis",
                )
                ax.set_yticks(range(len(words)))
                ax.set_yticklabels(words, fontsize=7)
                ax.set_xticks(range(len(steps)))
                ax.set_xticklabels([str(s) for s in steps], rotation=90, fontsize=6)
                ax.set_title(f"{TARGET_NAMES[t]}: {label}", fontsize=9)
                for w, row in zip(words, matrix, strict=True):
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
                    files.append(
                        [
                            cells[0].file(f"confidence/{t}.jsonl"),
                            cells[-1].file(f"confidence/{t}.jsonl"),
                        ]
                    )
        fig.colorbar(img, ax=axes, shrink=0.6, label="mean p(gold tag)")
        fig.suptitle(f"p(gold tag) across checkpoints: {_group_name(key)}")
        path = ctx.fig_dir / f"6_confidence_{_group_name(key)}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        a.figures.append(f"figures/{path.name}")
        a.tables.append(
            Table(
                f"{_group_name(key)}: mean p(gold) at first and last checkpoint",
                list(rows[0]),
                rows,
                files,
            )
        )
    if not a.figures:
        a.unavailable = "sweep cells have no confidence/{target}.jsonl files"
    return a


# --- 7: convergence ------------------------------------------------------------------------


def convergence_metrics(train_log: Sequence[dict]) -> dict[str, float | None]:
    """t90, normalised AUC and initial slope of one fine-tuning run's train loss."""
    steps, losses = mp.train_curve(train_log)
    return {
        "t90": mp.t90(steps, losses),
        "auc": mp.normalised_auc(steps, losses),
        "slope": mp.initial_slope(steps, losses),
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
                "delta t90 (steps)": mp.mean(d["t90"]),
                "delta AUC": mp.mean(d["auc"]),
                "delta slope": mp.mean(d["slope"]),
            }
        )
    return rows


def analysis_convergence(data: StudyData, ctx: Context) -> Analysis:
    """7. Fine-tuning speed: MAML - vanilla t90, normalised AUC, initial slope (Table 2)."""
    a = Analysis("convergence", "Fine-tuning convergence speed (MAML - vanilla)")
    pairs = [
        (b, t)
        for b, t in pair_cells(data.main(), ctx.spec.baseline_variant, ctx.spec.treatment_variant)
        if mp.train_curve(b.train_log)[0] and mp.train_curve(t.train_log)[0]
    ]
    if not pairs:
        a.unavailable = "no vanilla/MAML pair of main-grid cells with train_log.jsonl train losses"
        return a
    sizes, _ = _sizes([p[0] for p in pairs])
    rows = convergence_deltas(pairs)
    rows.sort(key=lambda r: (sizes.index(r["size"]), r["regime"]))
    files = [
        _files(
            [c for p in pairs if p[0].size == r["size"] and p[0].regime == r["regime"] for c in p],
            "train_log.jsonl",
        )
        for r in rows
    ]
    a.tables.append(
        Table("MAML - vanilla, averaged over sources (and seeds)", list(rows[0]), rows, files)
    )
    a.text.append(
        "t90: first logged step at which the train loss has fallen 90% of the way from its "
        "first to its final value. AUC: area under the loss curve with steps rescaled to "
        "[0, 1] and loss divided by its first value (1 = no progress). Slope: least-squares "
        "slope of loss vs step over the first 10% of steps. Negative deltas = MAML faster."
    )
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    regimes = sorted({r["regime"] for r in rows})
    w = 0.8 / len(regimes)
    for ax, (col, label) in zip(
        axes,
        [
            ("delta t90 (steps)", "delta t90 (steps)"),
            ("delta AUC", "delta normalised AUC"),
            ("delta slope", "delta initial slope"),
        ],
        strict=True,
    ):
        for k, regime in enumerate(regimes):
            vals = [
                next(
                    (_nan(r[col]) for r in rows if r["size"] == s and r["regime"] == regime),
                    math.nan,
                )
                for s in sizes
            ]
            ax.bar([i - 0.4 + w * (k + 0.5) for i in range(len(sizes))], vals, w, label=regime)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels(sizes)
        ax.set_title(label)
        ax.legend(title="regime", fontsize=8)
    fig.suptitle("MAML - vanilla fine-tuning convergence (negative = MAML converges faster)")
    a.figures.append(_save(fig, ctx, "7_convergence.png"))
    return a


# --- 8-9: dataset statistics, particles, vocabulary -----------------------------------------


def span_stat_rows(named: dict[str, list[list[str]]]) -> list[dict[str, Any]]:
    """One row per (dataset, type): spans and share of single-word spans."""
    rows = []
    for name, tag_seqs in named.items():
        stats = mp.span_statistics(tag_seqs)
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
        a.unavailable = "no data root available (pass --data-dir)"
        return a
    sources = sorted({c.source for c in data.cells if c.source and c.source != "all"})
    named: dict[str, list[list[str]]] = {}
    for code in sources:
        named[f"{code} train"] = [tags for _, tags in ctx.data.sentences(code, "train")]
    for code in TARGETS:
        named[f"{code} test"] = [tags for _, tags in ctx.data.sentences(code, "test")]
    rows = span_stat_rows(named)
    files = [[f"data: {r['dataset']}"] for r in rows]
    a.tables.append(
        Table("Gold spans per type (conlleval reading of IOB2)", list(rows[0]), rows, files)
    )
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
        mp.particle_spans(s.tokens, s.gold, particles) for s in with_sents[0].sentences[dataset]
    ]
    n_spans = sum(len(f) for f in gold_flags)
    n_part = sum(flag for f in gold_flags for _, flag in f)
    rec_p, rec_o = [], []
    for c in with_sents:
        part_hits, part_n, other_hits, other_n = 0, 0, 0, 0
        for s, flags in zip(c.sentences[dataset], gold_flags, strict=True):
            pred = set(mp.spans(s.pred))
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
        "recall_particle": (mp.mean(rec_p), mp.std(rec_p)),
        "recall_other": (mp.mean(rec_o), mp.std(rec_o)),
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
                    "particles": " ".join(particles),
                    "gold PER spans": r["per_spans"],
                    "preceded by particle (%)": pct(r["particle_share"]),
                    "recall after particle (%)": pct(mpart),
                    "s.d. (pp)": pct(spart),
                    "recall elsewhere (%)": pct(moth),
                    "s.d. (pp) ": pct(soth),
                    "cells": r["cells"],
                }
            )
            files.append(_files([c for c in cells if t in c.sentences], f"predictions/{t}.iob2"))
    if rows:
        a.tables.append(
            Table(
                "PER spans directly preceded by a personal case particle; recall = exact span "
                "match, mean and s.d. over main-grid cells of the variant",
                list(rows[0]),
                rows,
                files,
            )
        )
    if ctx.data is None:
        a.text.append("Subword and OOV statistics not available: no data root (pass --data-dir).")
    else:
        vrows, vfiles = vocabulary_rows(data, ctx)
        if vrows:
            a.tables.append(
                Table(
                    "Subword splits and OOV rate of the targets (word types, casefolded)",
                    list(vrows[0]),
                    vrows,
                    vfiles,
                )
            )
    if not a.tables:
        a.unavailable = "no predictions/{target}.iob2 files and no data root"
    return a


def vocabulary_rows(data: StudyData, ctx: Context) -> tuple[list[dict], list[list[str]]]:
    """Per target: share of words split into 2+ subwords, and OOV rate per fine-tuning source."""
    assert ctx.data is not None
    from picomaml.study.config import SOURCE_CODES

    sources = sorted({c.source for c in data.cells if c.source})
    vocab: dict[str, set[str]] = {}
    for s in sources:
        codes = SOURCE_CODES if s == "all" else (s,)
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
            row["split into 2+ subwords (%)"] = pct(mp.split_share(counts))
        for s in sources:
            row[f"OOV vs {s} (%)"] = pct(mp.oov_rate(words, vocab[s]))
        rows.append(row)
        files.append([f"data: {t} test", *(f"data: {s} train" for s in sources)])
    return rows, files


# --- 10-11: case studies and paired significance --------------------------------------------


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
    sizes, _ = _sizes([p[0] for p in pairs])
    return sorted(pairs, key=lambda p: -sizes.index(p[0].size))[0]


def word_deltas(b: CellRecord, t: CellRecord, dataset: str) -> list[list[float]]:
    """Per sentence, per word: log p_MAML(gold) - log p_vanilla(gold)."""
    return [
        mp.log_p_deltas(x.p_gold, y.p_gold)  # type: ignore[arg-type]
        for x, y in zip(b.sentences[dataset], t.sentences[dataset], strict=True)
    ]


def analysis_cases(data: StudyData, ctx: Context) -> Analysis:
    """10. Case studies: per-word change in log p(gold) vanilla -> MAML (Appendix B)."""
    a = Analysis("cases", "Case studies: where MAML gains and loses confidence")
    pair = choose_case_pair(data, ctx)
    if pair is None:
        a.unavailable = "no vanilla/MAML main-grid pair with confidence files on all three targets"
        return a
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
        {"word": w, "gold": g, "occurrences": len(v), "mean delta log p": mp.mean(v)}
        for (w, g), v in word_acc.items()
    ]
    words.sort(key=lambda r: (-r["mean delta log p"], r["word"]))
    k = ctx.spec.top_words
    cite = [
        [b.file(f"confidence/{ds}.jsonl") for ds in TARGETS]
        + [t.file(f"confidence/{ds}.jsonl") for ds in TARGETS]
    ]
    top = words[:k] + words[-k:] if len(words) > 2 * k else words
    a.tables.append(
        Table(
            "Words with the largest gains (top) and losses (bottom), all targets",
            list(top[0]),
            top,
            cite * len(top),
        )
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
    a.tables.append(
        Table(
            "Sentences with the largest total gain and loss",
            list(srows[0]),
            srows,
            [
                [
                    b.file(f"confidence/{r['dataset']}.jsonl"),
                    t.file(f"confidence/{r['dataset']}.jsonl"),
                ]
                for r in srows
            ],
        )
    )
    best, worst = sent_rows[0], sent_rows[-1]
    fig, axes = plt.subplots(
        2, 1, figsize=(max(7, 0.5 * max(len(best[1].tokens), len(worst[1].tokens))), 6.5)
    )
    titles = (
        "largest gain",
        "largest loss" if worst[3] < 0 else "smallest gain (no sentence lost)",
    )
    for ax, (ds, s, d, total), title in zip(axes, (best, worst), titles, strict=True):
        colors = [TREAT_COLOR if x >= 0 else "#e41a1c" for x in d]
        ax.bar(range(len(d)), d, color=colors)
        ax.set_xticks(range(len(d)))
        ax.set_xticklabels(
            [f"{w}\n{g}" for w, g in zip(s.tokens, s.gold, strict=True)], rotation=90, fontsize=7
        )
        ax.axhline(0, color="black", lw=0.8)
        ax.set_ylabel("delta log p(gold)")
        ax.set_title(f"{title}: {ds} {s.sent_id} (sum {total:+.2f})", fontsize=9)
    a.figures.append(_save(fig, ctx, "10_cases.png"))
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
    from picomaml.ner.metrics import paired_bootstrap

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
                "verdict": mp.verdict(lo, hi),
                "_lo": lo,
                "_hi": hi,
            }
        )
        files.append(
            [x for c in (b, t) for x in (c.file(f"predictions/{ds}.iob2") for ds in TARGETS)]
        )
    if not rows:
        a.unavailable = "no vanilla/MAML pair with predictions on all three targets"
        return a
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
    sizes, _ = _sizes([p[0] for p in pairs])
    for (size, regime), idx in sorted(
        groups.items(),
        key=lambda kv: (sizes.index(kv[0][0]) if kv[0][0] in sizes else 99, kv[0][1]),
    ):
        deltas = [rows[i]["delta (pp)"] for i in idx]
        ti = mp.t_interval(deltas)
        summary.append(
            {
                "size": size,
                "regime": regime,
                "pairs": len(idx),
                "mean delta (pp)": mp.mean(deltas),
                "95% t-interval across pairs (pp)": "n/a (1 pair)"
                if ti is None
                else f"[{ti[1]:+.1f}, {ti[2]:+.1f}]",
                "pairs CI > 0": sum(rows[i]["_lo"] > 0 for i in idx),
                "pairs CI < 0": sum(rows[i]["_hi"] < 0 for i in idx),
                "verdict": mp.verdict(*(ti[1:] if ti else (None, None))),
            }
        )
        sfiles.append([f for i in idx for f in files[i]])
    a.tables.append(
        Table(
            "Summary per size and regime (pairs = sources x seeds)",
            list(summary[0]),
            summary,
            sfiles,
        )
    )
    seed_rows, seed_files = [], []
    by_cfg: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_cfg[(r["size"], r["regime"], r["source"])].append(i)
    for (size, regime, source), idx in sorted(by_cfg.items()):
        if len(idx) < 2:
            continue
        ti = mp.t_interval([rows[i]["delta (pp)"] for i in idx])
        assert ti is not None
        seed_rows.append(
            {
                "size": size,
                "regime": regime,
                "source": source,
                "seeds": len(idx),
                "mean delta (pp)": ti[0],
                "95% t-interval (pp)": f"[{ti[1]:+.1f}, {ti[2]:+.1f}]",
                "verdict": mp.verdict(ti[1], ti[2]),
            }
        )
        seed_files.append([f for i in idx for f in files[i]])
    if seed_rows:
        a.tables.append(Table("Across-seed intervals", list(seed_rows[0]), seed_rows, seed_files))
    else:
        a.text.append(
            "Across-seed intervals not available: every configuration has one seed "
            "(add seeds to the grid's `seeds:` list)."
        )
    shown = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    a.tables.append(Table("Every pair", list(shown[0]), shown, files))
    fig, ax = plt.subplots(figsize=(8, max(3, 0.22 * len(rows) + 1)))
    labels = [f"{r['size']}-{r['regime']}-{r['source']}-s{r['seed']}" for r in rows]
    for i, r in enumerate(rows):
        color = TREAT_COLOR if r["_lo"] > 0 else ("#e41a1c" if r["_hi"] < 0 else "grey")
        ax.errorbar(
            [r["delta (pp)"]],
            [i],
            xerr=[[r["delta (pp)"] - 100 * r["_lo"]], [100 * r["_hi"] - r["delta (pp)"]]],
            fmt="o",
            color=color,
            ms=4,
            capsize=2,
        )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("MAML - vanilla pooled zero-shot F1 (pp), paired bootstrap 95% CI")
    a.figures.append(_save(fig, ctx, "11_paired.png"))
    return a


# --- 12: pretraining dynamics -----------------------------------------------------------


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
    runs: dict[tuple[str, str], Path] = {}
    for c in sorted(data.cells, key=lambda c: (c.kind != "main", c.cell_id)):
        run_dir = pretrain_run_dir(str(c.run.get("backbone", "")))
        if run_dir is not None and (run_dir / "metrics.jsonl").is_file():
            runs.setdefault((c.variant, c.size), run_dir)
    if not runs:
        a.unavailable = "no backbone is a pretraining run dir with metrics.jsonl"
        return a
    rows, files, curves = [], [], {}
    for (variant, size), run_dir in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        metrics_path = run_dir / "metrics.jsonl"
        metrics = [
            json.loads(line)
            for line in metrics_path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        cfg = parse_yaml((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        meta = cfg.get("meta", {}) if isinstance(cfg, dict) else {}
        ways = meta.get("ways") if meta.get("enabled") else None
        rows.append({"variant": variant, "size": size, **pretraining_summary(metrics, ways)})
        files.append([str(metrics_path)])
        curves[(variant, size)] = metrics
    a.tables.append(
        Table(
            "End of pretraining (means over the last 20% of logged steps)",
            list(rows[0]),
            rows,
            files,
        )
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
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for (variant, size), metrics in curves.items():
        color = TREAT_COLOR if variant == "maml" else BASE_COLOR
        label = f"{variant}-{size}"
        train = [m for m in metrics if m.get("kind") == "train"]
        dyn = [m for m in metrics if m.get("val_perplexity")]
        for ax, rows_of, key, marker in (
            (axes[0], train, "ar_loss", None),
            (axes[1], dyn, "val_perplexity", "o"),
            (axes[2], train, "meta_loss", None),
        ):
            pts = [m for m in rows_of if m.get(key) is not None]
            if pts:
                steps, values = [m["step"] for m in pts], [m[key] for m in pts]
                ax.plot(steps, values, color=color, marker=marker, label=label)
    ways_seen = {r["chance loss ln N"] for r in rows if r["chance loss ln N"] is not None}
    for ln_n in ways_seen:
        axes[2].axhline(ln_n, color="grey", linestyle="--", linewidth=1, label=f"ln N = {ln_n:.2f}")
    axes[0].set(xlabel="optimizer step", ylabel="AR loss (nats)", title="Next-token loss")
    axes[1].set(xlabel="optimizer step", ylabel="perplexity", title="Held-out perplexity")
    axes[1].set_yscale("log")
    axes[2].set(xlabel="optimizer step", ylabel="query loss (nats)", title="MAML query loss")
    axes[2].ticklabel_format(axis="y", useOffset=False)
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    a.figures.append(_save(fig, ctx, "12_pretraining.png"))
    return a


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
]


def run_all(data: StudyData, ctx: Context) -> list[Analysis]:
    """Every analysis, in the paper's order."""
    return [fn(data, ctx) for fn in ANALYSES]

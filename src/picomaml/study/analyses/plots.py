"""Figures of the analyses (matplotlib, Agg backend): each function draws rows an analysis
already computed and returns the figure; :func:`save` writes it under ``figures/``.

Why apart from the analyses: the numbers must not depend on plotting, and the tables can be
tested without drawing anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from picomaml import layout  # noqa: E402
from picomaml.data.registry import TARGETS  # noqa: E402
from picomaml.fileio import write_with  # noqa: E402
from picomaml.study.analyses.cells import group_name  # noqa: E402
from picomaml.study.analyses.tables import TARGET_NAMES, TYPES  # noqa: E402

BASE_COLOR, TREAT_COLOR = "#4daf4a", "#377eb8"  # the paper's green (vanilla) / blue (MAML)


def save(fig: Figure, fig_dir: Path, name: str, *, dpi: int = 120, tight_bbox: bool = False) -> str:
    """Write ``fig`` to ``fig_dir/name``, close it, and return its path relative to the
    results dir (``figures/name``) for the report."""
    path = fig_dir / name
    kwargs: dict[str, Any] = {"dpi": dpi, "format": path.suffix.lstrip(".") or "png"}
    if tight_bbox:
        kwargs["bbox_inches"] = "tight"
    else:
        fig.tight_layout()
    try:
        write_with(path, lambda tmp: fig.savefig(tmp, **kwargs))
    finally:
        plt.close(fig)
    return f"{layout.FIGURES_DIR}/{name}"


def nan_of(v: float | None) -> float:
    """``None`` as NaN (matplotlib leaves a gap)."""
    return math.nan if v is None else v


def _size_label(size: str, params: int | None) -> str:
    return f"{size}\n{params / 1e6:.1f}M" if params else size


def scale(rows: list[dict[str, Any]]) -> Figure:
    """Figure 1: vanilla and MAML bars per size, relative gain on a second axis."""
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
    return fig


def regime(rows: list[dict[str, Any]], regimes: list[str], params: dict[str, int | None]) -> Figure:
    """Figure 2: one panel per regime, vanilla and MAML bars per size with the delta."""
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
    return fig


def sources(rows: list[dict[str, Any]], sizes: list[str], sources: list[str]) -> Figure:
    """Figure 3: MAML - vanilla per fine-tuning source, one bar per size."""
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
    return fig


def sweep(rows: list[dict[str, Any]], groups: Iterable[tuple]) -> Figure:
    """Figure 5: final train loss (top) and F1 (bottom) vs pretraining step."""
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    styles = ["-", "--", ":", "-."]
    colors = {
        "source dev F1": "#1f77b4",
        "tl_trg F1": "#2ca02c",
        "tl_ugnayan F1": "#17becf",
        "ceb_gja F1": "#ffbf00",
    }
    for g, key in enumerate(groups):
        sub = [r for r in rows if r["run"] == group_name(key)]
        ls = styles[g % len(styles)]
        steps = [r["step"] for r in sub]
        ax1.plot(
            steps,
            [nan_of(r["final train loss"]) for r in sub],
            ls,
            marker="o",
            ms=3,
            label=group_name(key),
        )
        for col, color in colors.items():
            ax2.plot(
                steps,
                [nan_of(r[col]) for r in sub],
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
    return fig


def types(rows: list[dict[str, Any]], groups: Iterable[tuple]) -> Figure:
    """Figure 6: per-type F1 vs pretraining step, one panel per target."""
    fig, axes = plt.subplots(1, len(TARGETS), figsize=(13, 3.8), sharey=True)
    cmap = plt.get_cmap("viridis")
    styles = ["-", "--", ":", "-."]
    for ax, t in zip(axes, TARGETS, strict=True):
        for g, key in enumerate(groups):
            sub = [r for r in rows if r["run"] == group_name(key) and r["dataset"] == t]
            for k, e in enumerate(TYPES):
                ax.plot(
                    [r["step"] for r in sub],
                    [nan_of(r[f"{e} F1"]) for r in sub],
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
    return fig


def convergence(rows: list[dict[str, Any]], sizes: list[str]) -> Figure:
    """Table 2 as bars: MAML - vanilla t90, AUC and slope per size and regime."""
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
                    (nan_of(r[col]) for r in rows if r["size"] == s and r["regime"] == regime),
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
    return fig


def cases(best: tuple, worst: tuple) -> Figure:
    """The sentences with the largest gain and loss, one bar per word."""
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
    return fig


def paired(rows: list[dict[str, Any]]) -> Figure:
    """Every pair's delta with its paired-bootstrap interval."""
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
    return fig


def pretraining(
    rows: list[dict[str, Any]],
    curves: dict[tuple[str, str], list[dict]],
    share_baselines: dict[tuple[str, str], float] | None = None,
) -> Figure:
    """Top: AR loss, held-out perplexity, MAML query loss against ln N. Middle: query and
    leave-one-out support accuracy against chance, feature collapse (cosine, class share
    against its noise level), and pre-clip gradient norms of AR and meta micro-batches.
    Bottom, calibration: the query distribution's largest probability and entropy, the
    logit scale, and the ``[MASK]`` embedding norm (a lower loss bought by confidence or
    by one input row rather than by separating the classes shows here)."""
    fig, axes = plt.subplots(3, 3, figsize=(13, 10.5))
    (loss_ax, ppl_ax, meta_ax), (acc_ax, col_ax, grad_ax), (cal_ax, scale_ax, mask_ax) = axes
    for (variant, size), metrics in curves.items():
        color = TREAT_COLOR if variant == "maml" else BASE_COLOR
        label = f"{variant}-{size}"
        train = [m for m in metrics if m.get("kind") == "train"]
        dyn = [m for m in metrics if m.get("val_perplexity")]
        for ax, rows_of, key, style, name in (
            (loss_ax, train, "ar_loss", "-", label),
            (ppl_ax, dyn, "val_perplexity", "o-", label),
            (meta_ax, train, "meta_loss", "-", label),
            (acc_ax, train, "query_acc", "-", f"{label} query"),
            (acc_ax, train, "support_acc_before", ":", f"{label} support (LOO)"),
            (col_ax, train, "feature_cosine", "-", f"{label} cosine"),
            (col_ax, train, "feature_class_share", ":", f"{label} class share"),
            (grad_ax, train, "ar_grad_norm", "-", f"{label} AR"),
            (grad_ax, train, "meta_grad_norm", ":", f"{label} meta"),
            (cal_ax, train, "query_max_prob", "-", f"{label} max prob"),
            (cal_ax, train, "query_entropy", ":", f"{label} entropy"),
            (scale_ax, train, "logit_scale", "-", label),
            (mask_ax, train, "mask_embedding_norm", "-", label),
        ):
            pts = [m for m in rows_of if m.get(key) is not None]
            if pts:
                steps, values = [m["step"] for m in pts], [m[key] for m in pts]
                ax.plot(steps, values, style, color=color, label=name, markersize=3)
    for ln_n in {r["chance loss ln N"] for r in rows if r["chance loss ln N"] is not None}:
        meta_ax.axhline(ln_n, color="grey", linestyle="--", linewidth=1, label=f"ln N = {ln_n:.2f}")
        acc_ax.axhline(
            math.exp(-ln_n), color="grey", linestyle="--", linewidth=1, label="chance 1/N"
        )
    for base in set((share_baselines or {}).values()):
        col_ax.axhline(base, color="grey", linestyle="--", linewidth=1, label="share on noise")
    loss_ax.set(xlabel="optimizer step", ylabel="AR loss (nats)", title="Next-token loss")
    ppl_ax.set(xlabel="optimizer step", ylabel="perplexity", title="Held-out perplexity")
    ppl_ax.set_yscale("log")
    meta_ax.set(xlabel="optimizer step", ylabel="query loss (nats)", title="MAML query loss")
    meta_ax.ticklabel_format(axis="y", useOffset=False)
    acc_ax.set(xlabel="optimizer step", ylabel="accuracy", title="Episode accuracy")
    col_ax.set(xlabel="optimizer step", ylabel="value", title="Feature collapse")
    grad_ax.set(xlabel="optimizer step", ylabel="L2 norm", title="Micro-batch gradient norm")
    cal_ax.set(xlabel="optimizer step", ylabel="probability / nats", title="Query calibration")
    scale_ax.set(xlabel="optimizer step", ylabel="factor", title="Logit scale")
    mask_ax.set(xlabel="optimizer step", ylabel="L2 norm", title="[MASK] embedding norm")
    for ax in axes.flat:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    return fig


def probe(rows: list[dict[str, Any]]) -> Figure:
    """Probe accuracy (prototype, adapted) vs checkpoint step with 95% intervals, per run,
    against chance."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    runs = sorted({(r["variant"], r["size"]) for r in rows})
    for ax, kind in zip(axes, ("prototype", "adapted"), strict=True):
        for variant, size in runs:
            pts = [
                r for r in rows
                if (r["variant"], r["size"]) == (variant, size) and r["step"] is not None
            ]  # fmt: skip
            if not pts:
                continue
            steps = [r["step"] for r in pts]
            means = [r[f"{kind} acc (%)"] for r in pts]
            err = [
                [r[f"{kind} acc (%)"] - r[f"{kind} CI low (%)"] for r in pts],
                [r[f"{kind} CI high (%)"] - r[f"{kind} acc (%)"] for r in pts],
            ]
            color = TREAT_COLOR if variant == "maml" else BASE_COLOR
            ax.errorbar(steps, means, yerr=err, fmt="o-", color=color, capsize=3,
                        label=f"{variant}-{size}")  # fmt: skip
        for chance in {r["chance (%)"] for r in rows}:
            ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
        title = "Nearest prototype (no training)" if kind == "prototype" else "After inner loop"
        ax.set(xlabel="pretraining step", title=title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    axes[0].set_ylabel("query accuracy (%)")
    return fig


def confidence(
    mats: dict[tuple[str, bool], tuple[list[str], list[list[float | None]]] | None],
    steps: list[int | None],
    key: tuple,
) -> Figure:
    """Figure 7: heatmaps of mean p(gold) per word (rows) and checkpoint (columns), entity
    and non-entity words of each target."""
    fig, axes = plt.subplots(
        len(TARGETS),
        2,
        figsize=(max(8, 0.45 * len(steps) * 2 + 4), 3.2 * len(TARGETS)),
        squeeze=False,
    )
    img = None
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
                [[nan_of(v) for v in row] for row in matrix],
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
    fig.colorbar(img, ax=axes, shrink=0.6, label="mean p(gold tag)")
    fig.suptitle(f"p(gold tag) across checkpoints: {group_name(key)}")
    return fig

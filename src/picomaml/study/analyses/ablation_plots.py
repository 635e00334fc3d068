"""Figures of the ablation analyses, drawn from the rows the analyses computed (the
numbers never depend on plotting; see :mod:`picomaml.study.analyses.plots`)."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from picomaml.study.analyses.plots import BASE_COLOR, TREAT_COLOR, nan_of, plt, save

__all__ = ["balance", "fewshot", "names", "particles", "save"]


def _color(variant_index: int) -> str:
    return BASE_COLOR if variant_index == 0 else TREAT_COLOR


def _grouped(
    ax: Any, groups: list[str], series: list[tuple[str, list[float | None], dict[str, Any]]]
) -> None:
    """Bars of several series side by side within each group."""
    w = 0.8 / max(len(series), 1)
    for j, (label, values, style) in enumerate(series):
        xs = [i - 0.4 + w * (j + 0.5) for i in range(len(groups))]
        ax.bar(xs, [nan_of(v) for v in values], w, label=label, **style)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    top = max((v for _, values, _ in series for v in values if v is not None), default=0.0)
    ax.set_ylim(0, max(1.0, 1.15 * top))  # all-zero bars still get a readable 0-1% axis


def particles(rows: list[dict[str, Any]]) -> Figure:
    """PER F1 with and without the particles, per target and variant."""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(datasets)), 4))
    series = []
    for i, v in enumerate(variants):
        for col, hatch in (("PER F1 with (%)", None), ("PER F1 without (%)", "//")):
            values = [
                next((r[col] for r in rows if r["dataset"] == d and r["variant"] == v), None)
                for d in datasets
            ]
            label = f"{v} {'with' if hatch is None else 'without'} particles"
            series.append((label, values, {"color": _color(i), "hatch": hatch, "alpha": 0.9}))
    _grouped(ax, datasets, series)
    ax.set_ylabel("PER F1 (%)")
    ax.set_title("PER F1 with and without the personal case particles")
    ax.legend(fontsize=7)
    return fig


def names(rows: list[dict[str, Any]]) -> Figure:
    """PER F1 on the original targets and with frequent / unseen names."""
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    fig, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 4), squeeze=False)
    cols = [
        ("PER F1 original (%)", "original", "#999999"),
        ("PER F1 frequent names (%)", "frequent names", "#ff7f00"),
        ("PER F1 unseen names (%)", "unseen names", "#984ea3"),
    ]
    for ax, v in zip(axes[0], variants, strict=True):
        series = []
        for col, label, color in cols:
            values = [
                next((r[col] for r in rows if r["dataset"] == d and r["variant"] == v), None)
                for d in datasets
            ]
            series.append((label, values, {"color": color}))
        _grouped(ax, datasets, series)
        ax.set_title(v)
        ax.set_ylabel("PER F1 (%)")
        ax.legend(fontsize=7)
    fig.suptitle("PER F1 with names frequent in the pretraining corpus vs unseen names")
    return fig


def balance(rows: list[dict[str, Any]]) -> Figure:
    """Per-type F1 after natural vs balanced fine-tuning data, per variant."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    types = list(dict.fromkeys(r["type"] for r in rows))
    fig, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 4), squeeze=False)
    for i, (ax, v) in enumerate(zip(axes[0], variants, strict=True)):
        series = []
        for col, hatch in (("natural F1 (%)", None), ("balanced F1 (%)", "//")):
            values = [
                next((r[col] for r in rows if r["type"] == t and r["variant"] == v), None)
                for t in types
            ]
            style = {"color": _color(i), "hatch": hatch, "alpha": 0.9}
            series.append((col.replace(" F1 (%)", ""), values, style))
        _grouped(ax, types, series)
        ax.set_title(v)
        ax.set_ylabel("zero-shot F1 (%), targets pooled")
        ax.legend(fontsize=7)
    fig.suptitle("Per-type F1: natural vs balanced fine-tuning data")
    return fig


def fewshot(curves: list[dict[str, Any]], base: str, treat: str) -> Figure:
    """F1 against k, one panel per (target, regime), mean line and min-max band over draws."""
    panels = list(dict.fromkeys((c["target"], c["regime"]) for c in curves))
    targets = list(dict.fromkeys(p[0] for p in panels))
    regimes = list(dict.fromkeys(p[1] for p in panels))
    fig, axes = plt.subplots(
        len(targets),
        len(regimes),
        figsize=(4.2 * len(regimes), 2.8 * len(targets)),
        squeeze=False,
        sharey=True,
    )
    for r, target in enumerate(targets):
        for c, regime in enumerate(regimes):
            ax = axes[r][c]
            sub = [x for x in curves if x["target"] == target and x["regime"] == regime]
            if not sub:
                ax.set_axis_off()
                ax.set_title(f"{target}, {regime}: not run", fontsize=9)
                continue
            for i, (v, label) in enumerate(((base, "vanilla"), (treat, "MAML"))):
                pts = [(x["k"], x["values"].get(v, [])) for x in sub if x["values"].get(v)]
                if not pts:
                    continue
                ks = [k for k, _ in pts]
                ax.plot(ks, [100 * sum(v) / len(v) for _, v in pts], "o-", ms=3, color=_color(i))
                ax.fill_between(
                    ks,
                    [100 * min(v) for _, v in pts],
                    [100 * max(v) for _, v in pts],
                    color=_color(i),
                    alpha=0.2,
                    label=label,
                )
            ax.set_title(f"{target}, {regime}", fontsize=9)
            ax.set_xlabel("k target sentences added")
            if c == 0:
                ax.set_ylabel("micro-F1 (%)")
            ax.legend(fontsize=7)
    top = max((100 * v for x in curves for vs in x["values"].values() for v in vs), default=0.0)
    axes[0][0].set_ylim(0, max(1.0, 1.15 * top))  # shared by every panel
    fig.suptitle("Few-shot curves on each target's evaluation half (band: min-max over draws)")
    return fig

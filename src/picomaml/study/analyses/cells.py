"""Which cells an analysis compares: vanilla/MAML pairs, checkpoint-sweep groups, sizes in tier
order, and the decorators that run an analysis over them.

"Zero-shot F1" of a cell is the mean of its micro-F1 on the three targets (tl_trg,
tl_ugnayan, ceb_gja); MAML and vanilla are compared on *paired* cells (same size, regime,
source, seed and checkpoint step), so a failed cell removes its pair instead of biasing a
mean.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from picomaml.config import SIZES
from picomaml.data.registry import TARGETS
from picomaml.model import PicoConfig, count_parameters
from picomaml.study import summary_stats
from picomaml.study.analyses.tables import Analysis, Context, pct
from picomaml.study.records import CellRecord, StudyData

SIZE_ORDER = {size: i for i, size in enumerate(SIZES)}


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


def sizes_of(cells: Sequence[CellRecord]) -> tuple[list[str], dict[str, int | None]]:
    """The sizes of ``cells`` in tier order, and each size's backbone parameter count."""
    params: dict[str, int | None] = {}
    for c in cells:
        if params.get(c.size) is None:
            params[c.size] = param_count(c)
    return sorted(params, key=lambda s: size_sort_key(s, params)), params


def paired_zero_shot(ctx: Context, cells: Sequence[CellRecord]) -> list[tuple]:
    """(base, treat, zs_base, zs_treat) for pairs where both have all three targets."""
    out = []
    for b, t in pair_cells(cells, ctx.spec.baseline_variant, ctx.spec.treatment_variant):
        zb, zt = zero_shot_f1(b), zero_shot_f1(t)
        if zb is not None and zt is not None:
            out.append((b, t, zb, zt))
    return out


def no_pairs_reason(ctx: Context, cells: Sequence[CellRecord], what: str) -> str:
    """Why an analysis over vanilla/MAML pairs has nothing to compare (the variants present)."""
    variants = sorted({c.variant for c in cells})
    return (
        f"no {what} with both a '{ctx.spec.baseline_variant}' and a "
        f"'{ctx.spec.treatment_variant}' cell scored on all three targets "
        f"(variants present: {variants or 'none'})"
    )


NO_SWEEP = "the grid had no checkpoint sweep (add a `sweeps:` entry to the grid)"


def paired_means(sel: Sequence[tuple]) -> tuple[float, float, dict[str, Any]]:
    """Mean zero-shot F1 of the vanilla and MAML sides of ``sel`` (fractions) and the
    table columns they give (pairs, both F1 in percent, delta in points)."""
    mb, mt = summary_stats.mean([p[2] for p in sel]), summary_stats.mean([p[3] for p in sel])
    cols = {
        "pairs": len(sel),
        "vanilla F1": pct(mb),
        "MAML F1": pct(mt),
        "delta (pp)": pct(mt - mb),  # type: ignore[operator]
    }
    return mb, mt, cols  # type: ignore[return-value]


Analyze = Callable[[StudyData, Context], Analysis]
SweepGroups = dict[tuple, list[CellRecord]]


def over_main_pairs(key: str, title: str) -> Callable[[Callable[..., None]], Analyze]:
    """Decorator for analyses of paired main-grid cells: ``body(a, data, ctx, pairs)`` fills
    ``a`` and runs only when vanilla/MAML pairs with all three targets exist."""

    def wrap(body: Callable[..., None]) -> Analyze:
        @functools.wraps(body)
        def run(data: StudyData, ctx: Context) -> Analysis:
            a = Analysis(key, title)
            pairs = paired_zero_shot(ctx, data.main())
            if not pairs:
                return a.missing(no_pairs_reason(ctx, data.main(), "main-grid pairs"))
            body(a, data, ctx, pairs)
            return a

        return run

    return wrap


def over_sweep_groups(key: str, title: str) -> Callable[[Callable[..., None]], Analyze]:
    """Decorator for analyses of checkpoint sweeps: ``body(a, data, ctx, groups)`` fills ``a``
    and runs only when the grid had a sweep (groups as :func:`sweep_groups` returns them)."""

    def wrap(body: Callable[..., None]) -> Analyze:
        @functools.wraps(body)
        def run(data: StudyData, ctx: Context) -> Analysis:
            a = Analysis(key, title)
            groups = sweep_groups(data.sweep())
            if not groups:
                return a.missing(NO_SWEEP)
            body(a, data, ctx, groups)
            return a

        return run

    return wrap


def sweep_groups(cells: Iterable[CellRecord]) -> SweepGroups:
    """Sweep cells grouped by (variant, size, regime, source, seed), sorted by step."""
    groups: dict[tuple, list[CellRecord]] = defaultdict(list)
    for c in cells:
        if c.kind == "sweep" and c.step is not None:
            groups[(c.variant, c.size, c.regime, c.source, c.seed)].append(c)
    return {k: sorted(v, key=lambda c: c.step) for k, v in sorted(groups.items())}  # type: ignore[arg-type, return-value]


def group_name(key: tuple) -> str:
    """A sweep group's name: ``variant-size-regime-source-sSEED``."""
    variant, size, regime, source, seed = key
    return f"{variant}-{size}-{regime}-{source}-s{seed}"

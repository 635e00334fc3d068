"""The paper's numbers beside ours: one "paper vs ours" table per analysis.

Each figure the paper states (:mod:`picomaml.study.paper_numbers`) is matched to the same
quantity computed by this report's analyses: read off their table rows (so "ours" is the
number printed above it, never recomputed another way), or from the sweep cells for the
checkpoint-sweep endpoints. A quantity the paper only plots is "plot only"; one this report
does not estimate says so and why; one whose cells are absent says what is missing.
Where our grid differs from the paper's (sizes, sources, sweep, pretraining or fine-tuning
scale), the comparison says so beside the table.
"""

from __future__ import annotations

import fnmatch
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from picomaml.config import SIZES
from picomaml.data.registry import SOURCES, TARGETS
from picomaml.study import summary_stats
from picomaml.study.analyses.cells import group_name, sweep_groups
from picomaml.study.analyses.sweeps import final_train_loss, source_dev_f1
from picomaml.study.analyses.tables import Analysis, Context, Table
from picomaml.study.paper_numbers import PLOT_ONLY, PaperNumber
from picomaml.study.records import CellRecord, StudyData

Value = float | tuple[float, float] | None
#: Analyses whose numbers depend on the backbones and the fine-tuning, so a grid smaller
#: than the paper's changes them (span and particle statistics are properties of the data).
MODEL_DEPENDENT = ("scale", "regime", "sources", "sweep", "types", "confidence", "convergence")
#: Paper ``where`` target names that are not dataset codes.
TARGET_ALIASES = {"tagalog": ("tl_trg", "tl_ugnayan"), "cebuano": ("ceb_gja",)}
COLUMNS = ["quantity", "where", "paper", "ours", "difference", "source", "remark"]


@dataclass
class Ours:
    """Our value of a paper quantity in the paper's unit (None: not available, ``note`` says
    why) and how it was obtained."""

    value: Value
    note: str = ""


@dataclass
class Comparison:
    """The paper-vs-ours table of one analysis and how our run differs from the paper's."""

    key: str
    table: Table
    scale_notes: list[str] = field(default_factory=list)


# --- formatting ------------------------------------------------------------------------------

_DECIMALS = {"pp": 1, "percent": 1, "f1": 3, "fraction": 3, "loss": 3, "ratio": 1, "steps": 1}
_SUFFIX = {"pp": " pp", "percent": " %"}


def _one(x: float, unit: str, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if unit == "count":
        return f"{x:{sign}.0f}"
    if unit in ("setting", "logprob") and x != 0 and abs(x) < 1e-2:
        return f"{x:{sign}.1e}"
    return f"{x:{sign}.{_DECIMALS.get(unit, 3)}f}"


def format_value(value: Value, unit: str) -> str:
    """Our value as the table prints it, in the paper's unit."""
    if value is None:
        return "n/a"
    if isinstance(value, tuple):
        text = f"{_one(value[0], unit)}–{_one(value[1], unit)}"
    else:
        text = _one(value, unit)
    return text + _SUFFIX.get(unit, "")


def difference(paper: PaperNumber, ours: Value) -> tuple[str, float | None]:
    """Ours minus the paper's value (text, and the number when both sides are scalars).

    Against a stated range, a scalar is "inside" or its distance beyond the nearer end;
    two ranges differ end by end."""
    p, unit = paper.value, paper.unit
    if p is None or ours is None:
        return "", None
    if isinstance(p, tuple) and not isinstance(ours, tuple):
        if p[0] <= ours <= p[1]:
            return "inside the range", 0.0
        d = ours - p[1] if ours > p[1] else ours - p[0]
        return f"{_one(d, unit, True)} {'above' if d > 0 else 'below'}", d
    if isinstance(p, tuple) and isinstance(ours, tuple):
        return f"{_one(ours[0] - p[0], unit, True)} / {_one(ours[1] - p[1], unit, True)}", None
    if isinstance(ours, tuple):
        return f"{_one(ours[0] - p, unit, True)} to {_one(ours[1] - p, unit, True)}", None
    d = ours - p
    return _one(d, unit, True), d


def _where(n: PaperNumber) -> str:
    return ", ".join(
        f"{k}={'/'.join(map(str, v)) if isinstance(v, list) else v}" for k, v in n.where.items()
    )


# --- reading our tables ----------------------------------------------------------------------


@dataclass
class _Index:
    """Our analyses by key, the loaded study and the report's knobs."""

    analyses: dict[str, Analysis]
    data: StudyData
    ctx: Context

    def rows(self, key: str, table: int = 0) -> list[dict[str, Any]]:
        a = self.analyses.get(key)
        if a is None or a.unavailable or len(a.tables) <= table:
            return []
        return a.tables[table].rows

    def why_missing(self, key: str) -> str:
        a = self.analyses.get(key)
        if a is not None and a.unavailable:
            return f"our analysis is not available: {a.unavailable}"
        return "no matching row in our table"


def _find(rows: Sequence[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return row
    return None


def _col(ix: _Index, key: str, col: str, scale: float = 1.0, table: int = 0, **match: Any) -> Ours:
    row = _find(ix.rows(key, table), **match)
    if row is not None and row.get(col) is None:
        return Ours(None, f"our table has no value there ({col} is empty)")
    if row is None:
        what = ", ".join(f"{k}={v}" for k, v in match.items())
        a = ix.analyses.get(key)
        if a is not None and a.unavailable:
            return Ours(None, ix.why_missing(key))
        return Ours(None, f"not in our grid ({what})" if what else ix.why_missing(key))
    return Ours(float(row[col]) * scale)


def _spread(values: list[float], what: str) -> Ours:
    """A range over several rows (one value when they agree or only one exists)."""
    if not values:
        return Ours(None, f"no {what} in our tables")
    lo, hi = min(values), max(values)
    note = f"{what}: {len(values)} value(s)"
    return Ours(lo if lo == hi else (lo, hi), note)


def _sizes(n: PaperNumber) -> list[str]:
    size = n.where.get("size")
    return list(size) if isinstance(size, list) else [size] if size else []


# --- one rule per kind of paper number ---------------------------------------------------------


def _scale_gain(n: PaperNumber, ix: _Index) -> Ours:
    return _col(ix, "scale", "relative gain (%)", size=n.where["size"])


def _scale_delta(n: PaperNumber, ix: _Index) -> Ours:
    return _col(ix, "scale", "delta (pp)", size=n.where["size"])


def _regime_delta(n: PaperNumber, ix: _Index) -> Ours:
    regime = n.where["regime"]
    if "size" in n.where:
        return _col(ix, "regime", "delta (pp)", regime=regime, size=n.where["size"])
    values = [r["delta (pp)"] for r in ix.rows("regime") if r.get("regime") == regime]
    ours = _spread([float(v) for v in values if v is not None], f"per-size {regime} deltas")
    if ours.value is None:
        ours.note = ix.why_missing("regime")
    return ours


def _sources_positive(n: PaperNumber, ix: _Index) -> Ours:
    rows = [r for r in ix.rows("sources") if r.get("source") in SOURCES]
    if not rows:
        return Ours(None, ix.why_missing("sources"))
    positive = sum(1 for r in rows if (r.get("delta (pp)") or 0) > 0)
    return Ours(float(positive), f"of {len(rows)} sources in our grid (paper: of {len(SOURCES)})")


def _sources_col(col: str) -> Callable[[PaperNumber, _Index], Ours]:
    return lambda n, ix: _col(ix, "sources", col, source=n.where["source"])


def _convergence(col: str) -> Callable[[PaperNumber, _Index], Ours]:
    return lambda n, ix: _col(
        ix, "convergence", col, size=n.where["size"], regime=n.where["regime"]
    )


def _t90_cut_steps(n: PaperNumber, ix: _Index) -> Ours:
    values = []
    for size in _sizes(n):
        row = _find(ix.rows("convergence"), size=size, regime=n.where["regime"])
        if row is not None and row.get("delta t90 (steps)") is not None:
            values.append(-float(row["delta t90 (steps)"]))
    ours = _spread(values, "minus delta t90 of " + "/".join(_sizes(n)))
    if ours.value is None:
        ours.note = ix.why_missing("convergence")
    return ours


def _spans_count(n: PaperNumber, ix: _Index) -> Ours:
    dataset = f"{n.where['dataset']} {n.where['split']}"
    return _col(ix, "spans", "spans", dataset=dataset, type=n.where["tag"])


def _spans_single(n: PaperNumber, ix: _Index) -> Ours:
    dataset = f"{n.where['dataset']} {n.where['split']}"
    ours = _col(ix, "spans", "single-word (%)", dataset=dataset, type=n.where["tag"])
    ours.note = ours.note or "single-word spans (words, not subwords)"
    return ours


def _spans_ratio(other: str) -> Callable[[PaperNumber, _Index], Ours]:
    def rule(n: PaperNumber, ix: _Index) -> Ours:
        dataset = f"{n.where['dataset']} {n.where['split']}"
        per = _col(ix, "spans", "spans", dataset=dataset, type="PER")
        den = _col(ix, "spans", "spans", dataset=dataset, type=other)
        if per.value is None or den.value is None or not den.value:
            return Ours(None, per.note or den.note or f"no {other} spans")
        return Ours(float(per.value) / float(den.value))  # type: ignore[arg-type]

    return rule


def _targets(n: PaperNumber) -> tuple[str, ...]:
    target = n.where.get("target")
    if target is None:
        return TARGETS
    return TARGET_ALIASES.get(target, (target,))


def _mean_over_targets(
    n: PaperNumber, ix: _Index, key: str, col: str, scale: float, table: int = 0, **match: Any
) -> Ours:
    values, notes = [], []
    for t in _targets(n):
        got = _col(ix, key, col, scale, table, dataset=t, **match)
        if got.value is None:
            notes.append(got.note)
        else:
            values.append(float(got.value))  # type: ignore[arg-type]
    if not values:
        return Ours(None, notes[0] if notes else "no target rows")
    targets = _targets(n)
    note = f"mean of {', '.join(targets)}" if len(targets) > 1 else ""
    return Ours(sum(values) / len(values), note)


def _particle_share(scale: float) -> Callable[[PaperNumber, _Index], Ours]:
    def rule(n: PaperNumber, ix: _Index) -> Ours:
        ours = _mean_over_targets(n, ix, "particles", "preceded by particle (%)", scale)
        if ours.value is not None:
            what = "share of gold PER spans directly preceded by a case particle (the paper's "
            ours.note = _join(what + "Section 4.2 reading)", ours.note)
        return ours

    return rule


def _particle_oov(n: PaperNumber, ix: _Index) -> Ours:
    source = n.where.get("source", "sk_snk")
    vocab_table = next(
        (i for i, t in enumerate(_tables(ix, "particles")) if "OOV" in t.caption), None
    )
    if vocab_table is None:
        return Ours(None, "our OOV table is not available (needs the data root)")
    ours = _mean_over_targets(n, ix, "particles", f"OOV vs {source} (%)", 0.01, vocab_table)
    if ours.value is not None:
        ours.note = _join(f"word types not in the {source} train split (casefolded)", ours.note)
    return ours


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _tables(ix: _Index, key: str) -> list[Table]:
    a = ix.analyses.get(key)
    return [] if a is None or a.unavailable else a.tables


def _not_estimated(why: str) -> Callable[[PaperNumber, _Index], Ours]:
    return lambda n, ix: Ours(None, f"not estimated by this report: {why}")


# --- the checkpoint sweep --------------------------------------------------------------------


def _sweep_group(n: PaperNumber, ix: _Index) -> tuple[tuple | None, list[CellRecord], str]:
    """Our sweep that matches the paper's (variant, size, regime, source), preferring the
    paper's size; a different size is named in the returned note."""
    groups = sweep_groups(ix.data.sweep())
    variant = ix.ctx.spec.treatment_variant if n.where.get("variant") == "maml" else None
    want_size = n.where.get("size")
    fits = [
        k
        for k in groups
        if (variant is None or k[0] == variant)
        and k[2] == n.where.get("regime", k[2])
        and k[3] == n.where.get("source", k[3])
    ]
    if not fits:
        return None, [], "no sweep of this variant, regime and source in our grid"
    fits.sort(key=lambda k: (k[1] != want_size, SIZES.index(k[1]) if k[1] in SIZES else 9, k))
    key = fits[0]
    note = "" if key[1] == want_size else f"ours: {key[1]} (paper: {want_size})"
    return key, groups[key], note


def _sweep_rule(
    compute: Callable[[list[CellRecord], PaperNumber], Value],
) -> Callable[[PaperNumber, _Index], Ours]:
    def rule(n: PaperNumber, ix: _Index) -> Ours:
        key, cells, note = _sweep_group(n, ix)
        if key is None:
            return Ours(None, note)
        value = compute(cells, n)
        where = f"{group_name(key)}, {len(cells)} checkpoints"
        if value is None:
            return Ours(None, f"{where}: the cells lack what this needs")
        return Ours(value, _join(where, note))

    return rule


def _n_checkpoints(cells: list[CellRecord], n: PaperNumber) -> Value:
    return float(len(cells))


def _dev_f1s(cells: list[CellRecord]) -> list[float]:
    return [v for v in (source_dev_f1(c) for c in cells) if v is not None]


def _median_dev(cells: list[CellRecord], n: PaperNumber) -> Value:
    values = _dev_f1s(cells)
    return statistics.median(values) if values else None


def _half_iqr_dev(cells: list[CellRecord], n: PaperNumber) -> Value:
    values = _dev_f1s(cells)
    if len(values) < 2:
        return None
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (q3 - q1) / 2


def _loss_band(cells: list[CellRecord], n: PaperNumber) -> Value:
    losses = [v for v in (final_train_loss(c) for c in cells) if v is not None]
    return (min(losses), max(losses)) if losses else None


def _target_gain(cells: list[CellRecord], n: PaperNumber) -> Value:
    first, last = cells[0], cells[-1]
    gains = []
    for t in _targets(n):
        a, b = first.f1(t), last.f1(t)
        if a is not None and b is not None:
            gains.append(b - a)
    return summary_stats.mean(gains) if gains else None


def _type_f1_last(cells: list[CellRecord], n: PaperNumber) -> Value:
    last = cells[-1]
    values = [last.type_f1(t, n.where["tag"]) for t in _targets(n)]
    present = [v for v in values if v is not None]
    return summary_stats.mean(present) if present else None


# id pattern -> rule; the first match wins.
RULES: list[tuple[str, Callable[[PaperNumber, _Index], Ours]]] = [
    ("scale.relative_gain.*", _scale_gain),
    ("scale.*_overall_gain_pp", _scale_delta),
    ("scale.*_head_gain_pp", _regime_delta),
    ("regime.*_gain_pp*", _regime_delta),
    ("sources.positive_deltas", _sources_positive),
    ("sources.relative_gain.*", _sources_col("relative gain (%)")),
    ("sources.gain_pp.*", _sources_col("delta (pp)")),
    ("sweep.checkpoints", _sweep_rule(_n_checkpoints)),
    ("sweep.source_eval_f1_plateau", _sweep_rule(_median_dev)),
    ("sweep.source_eval_f1_iqr", _sweep_rule(_half_iqr_dev)),
    ("sweep.final_train_loss_band", _sweep_rule(_loss_band)),
    ("sweep.target_gain_from_initial.*", _sweep_rule(_target_gain)),
    ("sweep.*_steps", _not_estimated("a plateau or asymptote step needs a fitted curve")),
    ("sweep.source_dev_plateau_step", _not_estimated("a plateau step needs a fitted curve")),
    ("types.*_f1", _sweep_rule(_type_f1_last)),
    ("confidence.*", _not_estimated("read it off the heatmaps above")),
    ("convergence.t90.*", _convergence("delta t90 (steps)")),
    ("convergence.auc.*", _convergence("delta AUC")),
    ("convergence.slope.*", _convergence("delta slope")),
    ("convergence.t90_cut_steps", _t90_cut_steps),
    ("convergence.t90_cut_percent*", _not_estimated("our table holds t90 deltas, not ratios")),
    ("spans.count.*", _spans_count),
    ("spans.single_token.*", _spans_single),
    ("spans.per_to_loc", _spans_ratio("LOC")),
    ("spans.per_to_org", _spans_ratio("ORG")),
    ("particles.recall.*", _particle_share(0.01)),
    ("particles.preceded_share.*", _particle_share(1.0)),
    ("particles.oov.*", _particle_oov),
    (
        "particles.recall_sd.*",
        _not_estimated(
            "our particle share is a property of the gold data, the same for every checkpoint"
        ),
    ),
    ("cases.*", _not_estimated("our case study picks its own sentences")),
    ("pretraining.*", _not_estimated("pretraining is not part of this grid's cells")),
]


def ours_for(n: PaperNumber, ix: _Index) -> Ours:
    """Our value of paper number ``n`` (via the first rule whose pattern matches its id)."""
    for pattern, rule in RULES:
        if fnmatch.fnmatchcase(n.id, pattern):
            return rule(n, ix)
    return Ours(None, "no counterpart in this report")


# --- scale -----------------------------------------------------------------------------------


def scale_notes(key: str, ix: _Index, numbers: Sequence[PaperNumber], run: list[str]) -> list[str]:
    """How our run of analysis ``key`` differs from the paper's: ``run`` (pretraining and
    fine-tuning differences found by the report) plus the grid's coverage."""
    if key not in MODEL_DEPENDENT:
        return []
    notes = list(run)
    main = ix.data.main()
    if key in ("scale", "regime", "sources", "convergence"):
        sizes = sorted({c.size for c in main}, key=lambda s: SIZES.index(s) if s in SIZES else 9)
        if sizes and set(sizes) != set(SIZES):
            notes.append(f"sizes: ours {', '.join(sizes)}; paper {', '.join(SIZES)}")
        sources = {c.source for c in main}
        paper_sources = {*SOURCES, "all"}
        if sources and sources != paper_sources:
            notes.append(
                f"fine-tuning sources: ours {len(sources & paper_sources)} of the paper's "
                f"{len(paper_sources)} ({', '.join(sorted(sources))})"
            )
    if key in ("sweep", "types", "confidence"):
        paper_n = next((p for p in numbers if p.id == "sweep.checkpoints"), None)
        if paper_n is not None:
            gkey, cells, note = _sweep_group(paper_n, ix)
            if gkey is not None and (note or len(cells) != paper_n.value):
                notes.append(
                    f"sweep: ours {group_name(gkey)} with {len(cells)} checkpoints; paper "
                    f"{paper_n.where.get('size')} MAML with {paper_n.display()}"
                )
    return notes


# --- assembling ------------------------------------------------------------------------------


def compare(
    analyses: Sequence[Analysis],
    data: StudyData,
    ctx: Context,
    numbers: Sequence[PaperNumber],
    run_differences: list[str],
) -> dict[str, Comparison]:
    """A paper-vs-ours table for every analysis that has paper numbers (by analysis key)."""
    ix = _Index({a.key: a for a in analyses}, data, ctx)
    out: dict[str, Comparison] = {}
    for a in analyses:
        mine = [n for n in numbers if n.analysis == a.key]
        if not mine:
            continue
        rows, files = [], []
        for n in mine:
            if n.plot_only:
                ours, diff, raw = Ours(None, "see our table and figure above"), "", None
                shown = "see above" if not a.unavailable else "n/a"
            else:
                ours = ours_for(n, ix)
                diff, raw = difference(n, ours.value)
                shown = format_value(ours.value, n.unit)
            rows.append(
                {
                    "quantity": n.quantity,
                    "where": _where(n),
                    "paper": n.display() if not n.plot_only else PLOT_ONLY,
                    "ours": shown,
                    "difference": diff,
                    "source": n.source,
                    "remark": ours.note,
                    "id": n.id,
                    "paper value": list(n.value) if isinstance(n.value, tuple) else n.value,
                    "ours value": list(ours.value) if isinstance(ours.value, tuple) else ours.value,
                    "difference value": raw,
                    "paper quote": n.quote,
                    "paper note": n.note,
                }
            )
            files.append([f"paper_numbers.yaml: {n.id}"])
        table = Table("Paper vs ours (paper: the published text)", COLUMNS, rows, files)
        out[a.key] = Comparison(a.key, table, scale_notes(a.key, ix, numbers, run_differences))
    return out

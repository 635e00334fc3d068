"""``picomaml report RESULTS_DIR``: tables, figures and methods as ``report.md``.

The report is regenerated entirely from local files: ``grid.yaml``, each cell's
``results.json``/``run.json``/``finetune.yaml``/``train_log.jsonl``/predictions/
confidence, and each backbone's pretraining ``config.yaml``. Every table names the
files it was computed from (all of them, per row, in ``tables/<analysis>.json``),
and an analysis without data says "not available: <why>" instead of a number.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from picomaml import layout
from picomaml.config import SIZES, from_dict
from picomaml.data.align import subword_counts
from picomaml.data.registry import load_split
from picomaml.data.tokenizer import load_tokenizer
from picomaml.fileio import write_json, write_text
from picomaml.locks import folder_lock
from picomaml.study.analyses import Analysis, Context, DataAccess, Table, param_count, run_all
from picomaml.study.analyses.paper import Comparison, compare
from picomaml.study.config import AnalysisSpec
from picomaml.study.paper_numbers import PaperNumber, load_paper_numbers
from picomaml.study.records import StudyData, load_study

PAPER_STEPS = 6000
# The paper's effective batch in sequences: 1,024 for tiny, 2,048 for the other tiers.
PAPER_BATCH = {size: 1024 if size == "tiny" else 2048 for size in SIZES}
PAPER_SEQ_LEN = 2048
PAPER_COMMAND = (
    "picomaml grid configs/study/paper.yaml --results results/paper && "
    "picomaml report results/paper"
)
PUBLISHED_COMMAND = (
    "picomaml grid configs/study/published.yaml --results results/published && "
    "picomaml report results/published"
)


def _fmt(col: str, v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        if col == "parameters":
            return f"{v / 1e6:.1f}M"
        return str(v)
    if isinstance(v, float):
        low = col.lower()
        if "slope" in low:
            return f"{v:.1e}"
        if any(k in low for k in ("auc", "loss", "p(gold)", "change", "log p")):
            return f"{v:.3f}"
        if "delta" in low or "gain" in low:
            return f"{v:+.1f}"
        return f"{v:.1f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    """A GitHub-flavoured Markdown table."""
    cols = table.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in table.rows:
        lines.append("| " + " | ".join(_fmt(c, row.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def _cite(table: Table, json_name: str, results_dir: Path | None, limit: int = 4) -> str:
    files = list(dict.fromkeys(f for fs in table.files for f in fs))
    if results_dir is not None:
        files = list(dict.fromkeys(relative_path(f, results_dir) for f in files))
    if not files:
        return ""
    shown = ", ".join(f"`{f}`" for f in files[:limit])
    more = f" and {len(files) - limit} more" if len(files) > limit else ""
    return f"Computed from {shown}{more} (per-row file list: `{json_name}`)."


def relative_path(path: str | Path, results_dir: Path) -> str:
    """``path`` relative to the results dir, so a report reads the same on every machine
    (a path on another drive stays as it is; a relative path, such as a cell's
    ``cells/<id>/results.json``, already is relative to it)."""
    if not os.path.isabs(path):
        return str(path)
    try:
        return os.path.relpath(path, results_dir)
    except ValueError:
        return str(path)


def backbone_table(data: StudyData) -> tuple[list[dict[str, Any]], dict[str, dict]]:
    """One row per (variant, size): where it came from and how it was pretrained."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    configs: dict[str, dict] = {}
    for c in sorted(data.cells, key=lambda c: (c.kind != "main", c.cell_id)):
        key = (c.variant, c.size)
        if key in seen:
            continue
        backbone = str(c.run.get("backbone", ""))
        hub = c.run.get("backbone_hub")
        run = data.pretrain_run(c)
        row: dict[str, Any] = {
            "variant": c.variant,
            "size": c.size,
            "parameters": param_count(c),
            "backbone": backbone,
        }
        if isinstance(hub, dict):
            # A published checkpoint: the reference and the commit it resolved to.
            row["backbone"] = str(hub.get("pinned") or hub.get("reference"))
            row["published"] = True
            row["pretraining config"] = (
                f"published checkpoint {hub.get('reference')} (commit {hub.get('commit')}); "
                "its pretraining settings are the authors', not recorded here"
            )
        elif run is not None:
            cfg = run.config
            configs[str(run.config_file)] = cfg
            tr, meta, d = cfg.get("training", {}), cfg.get("meta", {}), cfg.get("data", {})
            row.update(
                {
                    "pretraining config": relative_path(run.config_file, data.results_dir),
                    "steps": tr.get("max_steps"),
                    "batch (seqs)": tr.get("batch_size"),
                    "seq len": d.get("seq_len"),
                    "corpus": d.get("corpus"),
                    "MAML": (
                        f"rho={meta.get('rho')}, {meta.get('ways')}-way {meta.get('shots')}-shot, "
                        f"{meta.get('inner_steps')} inner steps, lr {meta.get('inner_lr')}"
                        if meta.get("enabled")
                        else "off"
                    ),
                }
            )
        else:
            row["pretraining config"] = "not available (backbone is not a pretraining run dir)"
        seen[key] = row
    return list(seen.values()), configs


def demo_scale_reasons(
    backbones: list[dict[str, Any]], data: StudyData, finetune_keys: dict[str, set]
) -> list[str]:
    """Why these results are not paper-scale (empty list = paper-scale as far as we know)."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for b in backbones:
        name = f"{b['variant']}-{b['size']}"
        if b.get("steps") is not None and b["steps"] < PAPER_STEPS:
            by_reason[f"pretrained for {b['steps']} steps (paper: {PAPER_STEPS:,})"].append(name)
        paper_batch = PAPER_BATCH.get(b["size"], 2048)
        if b.get("batch (seqs)") is not None and b["batch (seqs)"] < paper_batch:
            by_reason[f"batches of {b['batch (seqs)']} sequences (paper: {paper_batch:,})"].append(
                name
            )
        if b.get("seq len") is not None and b["seq len"] < PAPER_SEQ_LEN:
            by_reason[f"sequences of {b['seq len']} tokens (paper: 2,048)"].append(name)
    reasons = [f"{', '.join(names)}: {why}" for why, names in by_reason.items()]
    for key, values in finetune_keys.items():
        if (
            key.startswith("max_")
            and "sentences" in key
            and any(v not in (None, 0) for v in values)
        ):
            reasons.append(f"fine-tuning data was sliced ({key} = {sorted(map(str, values))})")
    name = str(data.grid.get("name", ""))
    if name.startswith("demo") or name.endswith("-demo"):
        reasons.append("the grid is the demo grid")
    return list(dict.fromkeys(reasons))


def finetune_differences(ft: dict[str, set], numbers: list[PaperNumber]) -> list[str]:
    """Fine-tuning settings (learning rate, epochs) that differ from the paper's, whose values
    come from ``paper_numbers.yaml`` (``setup.finetune_lr``, ``setup.finetune_epochs``)."""
    stated = {n.id: n.value for n in numbers if n.analysis == "setup"}
    checks = [
        ("lr.head", "setup.finetune_lr", "learning rate"),
        ("lr.full", "setup.finetune_lr", "learning rate"),
        ("epochs", "setup.finetune_epochs", "epochs"),
    ]
    out = []
    for key, paper_id, what in checks:
        paper = stated.get(paper_id)
        values = {v for v in ft.get(key, set()) if isinstance(v, (int, float))}
        if isinstance(paper, float) and values and values != {paper}:
            shown = ", ".join(f"{v:g}" for v in sorted(values))
            out.append(f"fine-tuning {what} `{key}` = {shown} (paper: {paper:g})")
    return out


def finetune_settings(data: StudyData) -> dict[str, set]:
    """Every fine-tuning config key and the set of values it took across the main-grid and
    sweep cells (the ablations' cells describe their own settings in their analyses)."""
    values: dict[str, set] = defaultdict(set)
    for c in data.main() + data.sweep():
        for k, v in _flatten(c.finetune_cfg).items():
            values[k].add(json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v)
    return values


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def methods_section(data: StudyData, backbones: list[dict[str, Any]], ft: dict[str, set]) -> str:
    """Methods text generated from the configs actually used."""
    lines = ["## Methods (generated from the configs used)", ""]
    g = data.grid
    if g:
        lines.append(
            f"Grid `{g.get('name')}` (`grid.yaml`): regimes {g.get('regimes')}, sources "
            f"{g.get('sources')}, seeds {g.get('seeds')}; evaluation on "
            f"{(g.get('evaluate') or {}).get('datasets')}. {g.get('description', '')}".rstrip()
        )
        lines.append("")
    lines.append("**Backbones** (pretraining settings read from each run's `config.yaml`):")
    lines.append("")
    cols = ["variant", "size", "parameters", "steps", "batch (seqs)", "seq len", "corpus", "MAML"]
    cols += ["pretraining config"]
    lines.append(markdown_table(Table("", cols, backbones)))
    lines.append("")
    skip = {"backbone", "source", "regime", "seed", "out_dir", "output_dir"}
    const = {k: next(iter(v)) for k, v in sorted(ft.items()) if len(v) == 1 and k not in skip}
    varying = {k: sorted(map(str, v)) for k, v in sorted(ft.items()) if len(v) > 1}
    if const or varying:
        lines.append(
            "**Fine-tuning** (from each cell's `finetune.yaml`): "
            + ", ".join(f"`{k}`={v}" for k, v in const.items())
            + "."
        )
        vary = {k: v for k, v in varying.items() if k not in skip}
        if vary:
            lines.append(
                "Varying across cells: " + "; ".join(f"`{k}` in {v}" for k, v in vary.items()) + "."
            )
    else:
        lines.append("**Fine-tuning**: not available: no cell has a `finetune.yaml`.")
    lines.append("")
    lines.append(
        "**Scoring**: entity-level micro-F1 with seqeval in its default (conlleval) mode, "
        "the headline number; an entity is correct when type and both boundaries match. "
        "The *zero-shot F1* of a cell is the mean of its micro-F1 on `tl_trg`, `tl_ugnayan` "
        "and `ceb_gja`; nothing from these languages is seen in pretraining or fine-tuning. "
        "MAML and vanilla are compared on paired cells (same size, regime, source, seed)."
    )
    lines.append("")
    return "\n".join(lines)


def render_paper(c: Comparison) -> str:
    """The paper-vs-ours table of an analysis, with how our run differs in scale."""
    lines = [
        "**Paper vs ours** (ours in the paper's unit; each paper figure's quote is in "
        f"`tables/{c.key}.json`):",
        "",
    ]
    if c.scale_notes:
        lines += ["Ours ran at a different scale: " + "; ".join(c.scale_notes) + ".", ""]
    lines += [markdown_table(c.table), ""]
    return "\n".join(lines)


def render_analysis(
    a: Analysis,
    number: int,
    paper: Comparison | None = None,
    results_dir: Path | None = None,
) -> str:
    """Markdown for one analysis (and, when the paper states numbers for it, the
    paper-vs-ours table); source files are cited relative to ``results_dir`` when given."""
    lines = [f"### {number}. {a.title}", ""]
    if a.unavailable:
        lines += [f"*Not available: {a.unavailable}.*", ""]
        if paper is not None:
            lines.append(render_paper(paper))
        return "\n".join(lines)
    for fig in a.figures:
        lines += [f"![{a.title}]({fig})", ""]
    for para in a.text:
        lines += [para, ""]
    for t in a.tables:
        json_name = f"tables/{a.key}.json"
        lines += [f"**{t.caption}**" if t.caption else "", "", markdown_table(t), ""]
        cite = _cite(t, json_name, results_dir)
        if cite:
            lines += [cite, ""]
    if paper is not None:
        lines.append(render_paper(paper))
    return "\n".join(lines)


def write_tables(a: Analysis, results_dir: Path, paper: Comparison | None = None) -> None:
    """``tables/<key>.json``: every table with each row's source files (and ``paper``: the
    paper-vs-ours rows with the raw values, quotes and scale notes)."""
    out = results_dir / layout.TABLES_DIR
    out.mkdir(exist_ok=True)
    payload: dict[str, Any] = {
        "analysis": a.key,
        "title": a.title,
        "unavailable": a.unavailable,
        "tables": [
            {"caption": t.caption, "columns": t.columns, "rows": t.rows, "files": t.files}
            for t in a.tables
        ],
    }
    if paper is not None:
        payload["paper"] = {"scale_notes": paper.scale_notes, "rows": paper.table.rows}
    write_json(out / f"{a.key}.json", payload, indent=1, end="", default=str)


def default_data_access(data_root: Path | None) -> DataAccess | None:
    """Raw-data access through the registry and tokenizer under the resolved ``data_root``;
    None when there is no data root (``data_root`` None, as the CLI passes when it found none)."""
    if data_root is None:
        return None
    cache: dict[tuple[str, str], list[tuple[list[str], list[str]]]] = {}

    def sentences(code: str, split: str) -> list[tuple[list[str], list[str]]]:
        if (code, split) not in cache:
            sents, _ = load_split(code, split, data_root)
            cache[(code, split)] = [(list(s.tokens), list(s.tags)) for s in sents]
        return cache[(code, split)]

    return DataAccess(sentences, _subword_counter(data_root))


def _subword_counter(root: Path) -> Callable[[list[str]], list[int]]:
    tok = load_tokenizer(root)
    return lambda words: subword_counts(tok, words)


def write_report(
    results_dir: str | Path, data_root: Path | None = None, data: DataAccess | None = None
) -> Path:
    """Load ``results_dir``, run every analysis, write ``report.md`` + figures; returns its path.

    ``data_root``: the resolved data root for the analyses that read raw data; ``None``:
    none, so those analyses say the data is unavailable. ``data`` overrides raw-data access
    (tests). Holds the results dir's lock while it writes (a second report fails at once).
    """
    results_dir = Path(results_dir)
    with folder_lock(results_dir, "report"):
        return _write_report(results_dir, data_root, data)


def _write_report(results_dir: Path, data_root: Path | None, data: DataAccess | None) -> Path:
    study = load_study(results_dir)
    spec = (
        from_dict(AnalysisSpec, study.grid["analysis"])
        if isinstance(study.grid.get("analysis"), dict)
        else AnalysisSpec()
    )
    access = data if data is not None else default_data_access(data_root)
    ctx = Context(results_dir, spec, access)
    analyses = run_all(study, ctx)
    backbones, _ = backbone_table(study)
    ft = finetune_settings(study)
    reasons = demo_scale_reasons(backbones, study, ft)
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    name = study.grid.get("name", results_dir.name)
    lines = [f"# Study report: {name}", ""]
    published = bool(backbones) and all(b.get("published") for b in backbones)
    if reasons:
        why = (
            "The backbones are the published checkpoints, but the run is cut down so it fits "
            "a laptop CPU: "
            if published
            else "The models are tiny and briefly trained so the whole pipeline runs on a "
            "laptop CPU: "
        )
        lines += [
            "> **DEMO SCALE: these numbers say nothing about the paper's claims.** "
            + why
            + "; ".join(reasons)
            + ". Differences between vanilla and MAML here are dominated by noise. The "
            f"paper-scale study (GPUs, see `docs/study.md`) is: "
            f"`{PUBLISHED_COMMAND if published else PAPER_COMMAND}`.",
            "",
        ]
    lines += [
        f"Generated {now} by `picomaml report {results_dir}` from local files only. "
        f"{len(study.cells)} finished cells ({len(study.main())} main grid, "
        f"{len(study.sweep())} checkpoint sweep), {len(study.failed)} failed, "
        f"{len(study.incomplete)} incomplete. Tables list the files they come from; "
        "`tables/<analysis>.json` holds every row with its source files.",
        "",
        *(["## Warnings", "", *(f"- {w}" for w in study.warnings), ""] if study.warnings else []),
        methods_section(study, backbones, ft),
        "## Results",
        "",
    ]
    numbers = load_paper_numbers()
    paper = compare(analyses, study, ctx, numbers, reasons + finetune_differences(ft, numbers))
    for i, a in enumerate(analyses, 1):
        write_tables(a, results_dir, paper.get(a.key))
        lines.append(render_analysis(a, i, paper.get(a.key), results_dir))
    if study.failed or study.incomplete:
        lines += ["## Cells without results", ""]
        for f in study.failed:
            lines.append(f"- `{f['rel']}/error.json`: {f['message'].splitlines()[0][:200]}")
        for c in study.incomplete:
            lines.append(f"- `cells/{c}`: incomplete (no results.json, no error.json)")
        lines.append("")
    path = results_dir / layout.REPORT_MD
    write_text(path, "\n".join(lines))
    return path

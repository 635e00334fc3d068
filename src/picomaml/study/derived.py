"""Derived test and training sets of the ablations, written under ``RESULTS/derived/``.

The UNER files are only read. Every derived file is named by what it is, the
transformation's parameters and a content id (the first 12 hex digits of the SHA-256 of the
source file's SHA-256 and the parameters), e.g.
``derived/particles/tl_trg.particles-drop-3f2a1c9d0b7e.iob2``; a JSON manifest beside it
records the source file and its SHA-256, the parameters, the SHA-256 of the written file
and what changed. ``derived/index.json`` maps each ablation to its files (paths relative to
the results dir) and is what grid cells and the report read.

Rebuilding is deterministic (same source bytes, parameters and seeds, same files), so shards
and reruns may rebuild freely: writes are atomic and the content is identical.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from picomaml import layout
from picomaml.data.particles import target_particles
from picomaml.data.paths import no_data_root_error
from picomaml.data.registry import get_dataset, load_split
from picomaml.data.sampling import draw_fewshot, fewshot_pool, span_counts, split_halves
from picomaml.data.transforms import MaskStats, mask_particles, substitute_names
from picomaml.data.uner import Sentence
from picomaml.errors import PicomamlError
from picomaml.fileio import read_json, write_json, write_text
from picomaml.study.ablation_config import AblationSpec
from picomaml.study.config import GridConfig

Say = Callable[[str], None]


def format_iob2(sentences: Sequence[Sentence]) -> str:
    """UNER's IOB2 text of ``sentences`` (``# sent_id``/``# text`` then index, word, tag)."""
    lines: list[str] = []
    for s in sentences:
        lines += [f"# sent_id = {s.sent_id}", f"# text = {' '.join(s.tokens)}"]
        lines += [
            f"{i}\t{w}\t{t}" for i, (w, t) in enumerate(zip(s.tokens, s.tags, strict=True), 1)
        ]
        lines.append("")
    return "\n".join(lines) + "\n"


def content_id(source_sha256: str, params: dict[str, Any]) -> str:
    """12 hex digits naming a derived file: its source's bytes plus the parameters."""
    blob = json.dumps({"source": source_sha256, "params": params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


class _Target:
    """One target test set read once: sentences, file and SHA-256."""

    def __init__(self, code: str, data_root: Path) -> None:
        path = get_dataset(code).path("test", data_root)
        self.code = code
        self.sentences, _ = load_split(code, "test", data_root)
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        self.file = path.relative_to(data_root).as_posix()


def _write(
    results_dir: Path | None,
    folder: str,
    stem: str,
    sentences: Sequence[Sentence],
    manifest: dict[str, Any],
) -> str:
    """Write ``derived/<folder>/<stem>.iob2`` and its manifest (nothing when ``results_dir``
    is None: a dry run); returns the path relative to the results dir."""
    rel = f"{layout.DERIVED_DIR}/{folder}/{stem}.iob2"
    if results_dir is None:
        return rel
    text = format_iob2(sentences)
    (results_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    write_text(results_dir / rel, text)
    manifest = {
        **manifest,
        "file": rel,
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "sentences": len(sentences),
        "spans": span_counts([s.tags for s in sentences], range(len(sentences))),  # type: ignore[arg-type]
    }
    write_json(results_dir / rel.replace(".iob2", ".json"), manifest)
    return rel


def _source(t: _Target) -> dict[str, str]:
    return {"dataset": t.code, "file": t.file, "sha256": t.sha256}


def _particles(cfg: GridConfig, targets: dict[str, _Target], out: Path | None) -> dict[str, Any]:
    ab = cfg.ablations.particles
    assert ab is not None
    sets = {}
    for code in ab.targets:
        t = targets[code]
        particles = list(cfg.analysis.particles.get(code) or target_particles(code))
        params = {
            "mode": ab.mode,
            "particles": particles,
            "types": list(ab.types),
            **({"replacement": ab.replacement} if ab.mode == "replace" else {}),
        }
        total = MaskStats()
        masked = []
        for s in t.sentences:
            new, stats = mask_particles(s, particles, ab.mode, ab.replacement, ab.types)
            total.add(stats)
            masked.append(new)
        suffix = f"{ab.mode}-{ab.replacement}" if ab.mode == "replace" else ab.mode
        stem = f"{code}.particles-{suffix}-{content_id(t.sha256, params)}"
        manifest = {"kind": "particles", "params": params, "source": _source(t)}
        manifest["changes"] = total.to_dict()
        rel = _write(out, "particles", stem, masked, manifest)
        sets[code] = {"key": f"{code}.particles", "file": rel, "changes": total.to_dict()}
    return {"params": {"mode": ab.mode, "replacement": ab.replacement}, "sets": sets}


def _names(ab: AblationSpec, targets: dict[str, _Target], out: Path | None) -> dict[str, Any]:
    names = ab.names
    assert names is not None
    pools: dict[str, Any] = {}
    sets: dict[str, dict[str, Any]] = {}
    for pool_name in ("frequent", "unseen"):
        path = names.pool_path(pool_name)
        pool = names.pool(pool_name)
        pool_sha = hashlib.sha256(path.read_bytes()).hexdigest()
        pools[pool_name] = {
            "file": str(path),
            "sha256": pool_sha,
            "given": list(pool.given),
            "surnames": list(pool.surnames),
        }
        sets[pool_name] = {}
        for code in names.targets:
            t = targets[code]
            params = {"pool": pool_name, "pool_sha256": pool_sha, "seed": names.seed}
            rng = random.Random(f"names|{names.seed}|{code}")
            replaced = 0
            new_sents = []
            for s in t.sentences:
                new, n = substitute_names(s, pool, rng)
                replaced += n
                new_sents.append(new)
            stem = f"{code}.names-{pool_name}-seed{names.seed}-{content_id(t.sha256, params)}"
            manifest = {"kind": "names", "params": params, "source": _source(t)}
            manifest["changes"] = {"per_spans_replaced": replaced}
            rel = _write(out, "names", stem, new_sents, manifest)
            sets[pool_name][code] = {
                "key": f"{code}.names-{pool_name}",
                "file": rel,
                "per_spans_replaced": replaced,
            }
    return {"params": {"seed": names.seed}, "pools": pools, "sets": sets}


def _fewshot(cfg: GridConfig, targets: dict[str, _Target], out: Path | None) -> dict[str, Any]:
    fs = cfg.ablations.fewshot
    assert fs is not None
    info: dict[str, Any] = {}
    for code in fs.targets(cfg.regimes):
        t = targets[code]
        tokens = [s.tokens for s in t.sentences]
        eval_idx, other = split_halves(len(t.sentences), fs.split_seed)
        pool, excluded = fewshot_pool(tokens, eval_idx, other)
        over = [k for k in fs.ks if k > len(pool)]
        if over and not fs.cap:
            raise PicomamlError(
                f"ablations.fewshot.ks: k = {over} larger than the pool of {code} ({len(pool)} "
                f"sentences: the half of its {len(t.sentences)} not used for evaluation); lower "
                "k or set ablations.fewshot.cap: true"
            )
        k_eff = {str(k): min(k, len(pool)) for k in fs.ks}
        params = {"split_seed": fs.split_seed}
        stem = f"{code}.eval-half-split{fs.split_seed}-{content_id(t.sha256, params)}"
        eval_sents = [t.sentences[i] for i in eval_idx]
        manifest = {"kind": "fewshot-eval", "params": params, "source": _source(t)}
        manifest["sent_ids"] = [s.sent_id for s in eval_sents]
        rel_eval = _write(out, "fewshot", stem, eval_sents, manifest)
        draws: dict[str, dict[str, str]] = {}
        for k in fs.ks:
            if k == 0:
                continue
            draws[str(k)] = {}
            for d in range(fs.draws):
                idx = draw_fewshot(pool, k_eff[str(k)], d, fs.seed, code)
                params = {"split_seed": fs.split_seed, "seed": fs.seed, "k": k, "draw": d}
                params["k_used"] = k_eff[str(k)]
                stem = f"{code}.k{k:02d}-draw{d}-seed{fs.seed}-{content_id(t.sha256, params)}"
                sents = [t.sentences[i] for i in idx]
                manifest = {"kind": "fewshot-draw", "params": params, "source": _source(t)}
                manifest["sent_ids"] = [s.sent_id for s in sents]
                draws[str(k)][str(d)] = _write(out, "fewshot", stem, sents, manifest)
        info[code] = {
            "eval": {
                "key": f"{code}.eval-half",
                "file": rel_eval,
                "sentences": len(eval_sents),
                "spans": span_counts([s.tags for s in eval_sents], range(len(eval_sents))),  # type: ignore[arg-type]
            },
            "sentences": len(t.sentences),
            "pool": len(pool),
            "excluded_repeats": len(excluded),
            "k_used": k_eff,
            "capped": [k for k in fs.ks if k > len(pool)],
            "draws": draws,
        }
    params = {"ks": fs.ks, "draws": fs.draws, "seed": fs.seed, "split_seed": fs.split_seed}
    return {"params": params, "targets": info}


def prepare_derived(
    cfg: GridConfig,
    results_dir: Path,
    data_root: Path | None,
    say: Say | None = None,
    write: bool = True,
) -> dict[str, Any] | None:
    """Write every derived set the grid's ablations need and ``derived/index.json``;
    returns the index (None when the grid has no ablation that derives data).
    ``write=False`` computes the same index and writes nothing (``grid --dry-run``).

    Raises the missing-data error when there is no data root, and an error naming
    ``ablations.fewshot.ks`` when ``cap`` is off and a ``k`` does not fit a target's pool.
    """
    ab = cfg.ablations
    if ab.particles is None and ab.names is None and ab.fewshot is None:
        return None
    if data_root is None:
        raise no_data_root_error()
    codes = set()
    if ab.particles is not None:
        codes |= set(ab.particles.targets)
    if ab.names is not None:
        codes |= set(ab.names.targets)
    if ab.fewshot is not None:
        codes |= set(ab.fewshot.targets(cfg.regimes))
    targets = {c: _Target(c, data_root) for c in sorted(codes)}
    out = results_dir if write else None
    index: dict[str, Any] = {}
    if ab.particles is not None:
        index["particles"] = _particles(cfg, targets, out)
    if ab.names is not None:
        index["names"] = _names(ab, targets, out)
    if ab.fewshot is not None:
        index["fewshot"] = _fewshot(cfg, targets, out)
    if not write:
        return index
    write_json(results_dir / layout.DERIVED_INDEX, index)
    if say is not None:
        n = sum(1 for _ in (results_dir / layout.DERIVED_DIR).rglob("*.iob2"))
        say(f"derived sets: {n} files under {results_dir / layout.DERIVED_DIR}")
    return index


def read_index(results_dir: Path) -> dict[str, Any]:
    """``derived/index.json`` (empty when the grid derived nothing)."""
    path = results_dir / layout.DERIVED_INDEX
    return read_json(path) if path.is_file() else {}

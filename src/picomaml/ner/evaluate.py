"""Score a fine-tuning run on the zero-shot targets, the PUD sets and the source's test set(s).

``evaluate_run`` writes, in the RUN_DIR (layout in ``docs/DESIGN.md``):

* ``predictions/{code}.iob2``: ``index\\ttoken\\tgold\\tpred``, a blank line between sentences;
* ``confidence/{code}.jsonl``: per sentence the CRF marginal probability of each gold tag;
* ``results.json`` last (atomically): seqeval micro and per-type scores in default
  (headline) and strict IOB2 mode, plus a seeded sentence-level bootstrap 95% interval of the
  default-mode micro F1. Datasets already in an earlier ``results.json`` of the same run and
  not re-scored are kept: the command holds the run dir's lock (:mod:`picomaml.locks`; a
  second ``evaluate`` fails at once) and reads the old file again just before it writes.
  An old ``results.json`` that cannot be read (truncated, not an object) stops the command
  before any work and is never overwritten.

Default datasets: ``tl_trg tl_ugnayan ceb_gja``, the six PUD sets, and the source's own test
set; for source ``all`` each of the nine sources' test sets is scored *separately* (under its
own code), so a number keyed ``sk_snk`` always means the same test set in every run.

``derived`` adds test sets read from IOB2 files (the ablations' rewritten target sets and
few-shot evaluation halves), each scored under its own key; its entry in ``results.json``
records the file and its SHA-256 under ``derived``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import Tensor

from picomaml import layout
from picomaml.config import check_seed, load_config, to_dict
from picomaml.data.registry import DATASETS, PUD, SOURCES, TARGETS, dataset_splits
from picomaml.data.tokenizer import EOS_ID, load_tokenizer
from picomaml.data.uner import Sentence, read_iob2
from picomaml.errors import PicomamlError
from picomaml.fileio import atomic_writer, read_json_object, remove_stale_temps, write_json
from picomaml.layout import BACKBONE_DIR, CRF_HEAD, FINETUNE_YAML, RESULTS_JSON, RUN_JSON
from picomaml.locks import folder_lock
from picomaml.model import PicoDecoder, check_vocab, load_pico
from picomaml.model.backbone import backbone_shape, recorded_backbone_folder
from picomaml.ner.config import FinetuneConfig
from picomaml.ner.crf import CRFTagger
from picomaml.ner.features import encode_sentences, word_features
from picomaml.ner.head import (
    Logger,
    decode_features,
    gold_marginals,
    ids_to_tags,
    load_head,
    load_sentences,
    progress_bar,
    resolve_device,
    stderr_log,
    tag_ids,
)
from picomaml.ner.metrics import bootstrap_f1_ci, entity_scores
from picomaml.provenance import provenance


@dataclass
class LoadedRun:
    """A fine-tuned model ready to tag: backbone, CRF head, tokenizer and window."""

    run_dir: Path
    cfg: FinetuneConfig
    run: dict[str, Any]
    model: PicoDecoder
    tagger: CRFTagger
    tokenizer: Tokenizer
    window: int
    batch_size: int

    @torch.no_grad()
    def features(
        self,
        sentences: Sequence[Sequence[str]],
        progress: bool | None = False,
        desc: str = "features",
    ) -> list[Tensor]:
        """Word features of each sentence (every word scored, long sentences windowed);
        ``progress``: a tqdm bar over the windows (None: only on a terminal)."""
        encoded = encode_sentences(self.tokenizer, sentences, self.window)
        n_words = [len(s) for s in sentences]
        with progress_bar(desc, sum(len(w) for w in encoded), progress) as update:
            return word_features(self.model, encoded, n_words, self.batch_size, EOS_ID, update)

    def predict(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """Viterbi tags for each sentence of words."""
        return ids_to_tags(decode_features(self.tagger, self.features(sentences)))


def load_run(run_dir: str | Path, device: str = "auto", data_root: Path | None = None) -> LoadedRun:
    """Load a fine-tuning RUN_DIR; missing files and a changed backbone are clear errors.

    ``data_root`` (resolved) only supplies a tokenizer override; ``None``: the shipped one.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PicomamlError(f"run dir {run_dir} does not exist")
    missing = [n for n in (FINETUNE_YAML, RUN_JSON, CRF_HEAD) if not (run_dir / n).is_file()]
    if missing:
        raise PicomamlError(
            f"run dir {run_dir} is missing {', '.join(missing)}: it is not a finished "
            "fine-tuning run (run `picomaml finetune ... --out RUN_DIR` first)"
        )
    cfg = load_config(FinetuneConfig, run_dir / FINETUNE_YAML)
    run = read_json_object(run_dir / RUN_JSON)
    for key in ("backbone", "backbone_config", "regime"):
        if key not in run:
            raise PicomamlError(f"{run_dir / RUN_JSON}: missing key {key!r}")
    if run["regime"] == "full":
        folder = run_dir / BACKBONE_DIR
        if not all((folder / name).is_file() for name in layout.PICO_FILES):
            raise PicomamlError(
                f"run dir {run_dir} is a full-regime run but {BACKBONE_DIR}/ lacks "
                "config.json or model.safetensors"
            )
    else:
        folder = recorded_backbone_folder(run)
        if not (folder / layout.PICO_WEIGHTS).is_file():
            raise PicomamlError(
                f"the backbone of {run_dir}, {folder}, is gone (no model.safetensors there)"
            )
    model = load_pico(folder)
    want = backbone_shape(run["backbone_config"])
    got = backbone_shape(model.config)
    if want != got:
        raise PicomamlError(
            f"backbone {folder} has shape {got}, but {run_dir / RUN_JSON} was fine-tuned on "
            f"{want}: the backbone changed since fine-tuning"
        )
    tokenizer = load_tokenizer(data_root)
    check_vocab(model.config, tokenizer.get_vocab_size(), f"backbone {folder}")
    dev = resolve_device(device)
    model.to(dev).eval()
    tagger = load_head(run_dir, int(model.config.d_model), cfg.constraints).to(dev).eval()
    window = int(run.get("window") or model.config.max_seq_len)
    return LoadedRun(run_dir, cfg, run, model, tagger, tokenizer, window, cfg.feature_batch_size)


def default_datasets(source: str) -> list[str]:
    """Targets, PUD sets, then the source's test set (each source's for ``all``)."""
    own = list(SOURCES) if source == "all" else [source]
    return list(dict.fromkeys([*TARGETS, *PUD, *own]))


def write_predictions(
    path: Path, sentences: Sequence[Sentence], pred: Sequence[Sequence[str]]
) -> None:
    """``index\\ttoken\\tgold\\tpred`` lines (index from 1), a blank line after each sentence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as fh:
        for sent, tags in zip(sentences, pred, strict=True):
            for i, (tok, gold, p) in enumerate(zip(sent.tokens, sent.tags, tags, strict=True), 1):
                fh.write(f"{i}\t{tok}\t{gold}\t{p}\n")
            fh.write("\n")


def write_confidence(
    path: Path,
    sentences: Sequence[Sentence],
    pred: Sequence[Sequence[str]],
    p_gold: Sequence[Sequence[float]],
) -> None:
    """One JSON object per sentence: sent_id, tokens, gold, pred, p_gold."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as fh:
        for k, (sent, tags, probs) in enumerate(zip(sentences, pred, p_gold, strict=True)):
            row = {
                "sent_id": getattr(sent, "sent_id", None) or str(k),
                "tokens": list(sent.tokens),
                "gold": list(sent.tags),
                "pred": list(tags),
                "p_gold": [round(p, 6) for p in probs],
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def score_dataset(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], n_resamples: int, seed: int
) -> dict[str, Any]:
    """The ``results.json`` entry of one dataset (schema in ``docs/DESIGN.md``)."""
    default = entity_scores(gold, pred, mode="default")
    strict = entity_scores(gold, pred, mode="strict")
    boot = bootstrap_f1_ci(gold, pred, n_resamples=n_resamples, seed=seed, mode="default")
    return {
        "n_sentences": len(gold),
        "n_gold_entities": int(default["micro"]["support"]),
        "default": default,
        "strict": strict,
        "bootstrap": {
            "n_resamples": n_resamples,
            "seed": seed,
            "mode": "default",
            "f1_ci95": boot["f1_ci95"],
        },
    }


def check_datasets(datasets: Sequence[str]) -> list[str]:
    """Dataset codes to score (``all`` = the nine sources), each known and with a test split;
    checked before any work, so a typo in the last code never costs the first one's scoring."""
    codes = [c for part in datasets for c in (SOURCES if part == "all" else [part])]
    codes = list(dict.fromkeys(codes))
    bad = [c for c in codes if c not in DATASETS]
    if bad:
        raise PicomamlError(
            f"--datasets: unknown code(s) {', '.join(bad)}; valid codes: "
            f"{', '.join([*DATASETS, 'all'])}"
        )
    no_test = [c for c in codes if "test" not in dataset_splits(c)]
    if no_test:
        raise PicomamlError(f"--datasets: no test split in {', '.join(no_test)}")
    return codes


_DERIVED_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")


def load_derived(derived: Mapping[str, Path]) -> dict[str, tuple[list[Sentence], dict[str, Any]]]:
    """Read the ``derived`` test sets (key -> IOB2 file): sentences and what was read, with
    the file and its SHA-256. A key must be a file name and no registry code."""
    out = {}
    for key, path in derived.items():
        if not _DERIVED_KEY.fullmatch(key) or key in DATASETS or key == "all":
            raise PicomamlError(
                f"derived test set {key!r}: expected a name of letters, digits and _.+- that "
                "is no dataset code"
            )
        path = Path(path)
        if not path.is_file():
            raise PicomamlError(f"derived test set {key}: file not found: {path}")
        sentences, report = read_iob2(path)
        info = {
            "read_report": json.loads(json.dumps(dataclasses.asdict(report), default=str)),
            "derived": {"file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
        }
        out[key] = (sentences, info)
    return out


def _output_dirs(run_dir: Path) -> None:
    """Create ``predictions/`` and ``confidence/`` now: a file in their place or a read-only
    run dir stops the command before the model is run."""
    for name in (layout.PREDICTIONS_DIR, layout.CONFIDENCE_DIR):
        folder = run_dir / name
        if folder.exists() and not folder.is_dir():
            raise PicomamlError(f"{folder} exists and is not a directory; move it away")
        folder.mkdir(exist_ok=True)
    if not os.access(run_dir, os.W_OK):
        raise PicomamlError(f"run dir {run_dir} is not writable (results.json goes there)")


def previous_datasets(path: Path) -> dict[str, Any]:
    """The ``datasets`` of an existing ``results.json`` (empty when there is none); a file
    that is not a results object is an error naming it, so it is never overwritten."""
    if not path.is_file():
        return {}
    old = read_json_object(path)
    datasets = old.get("datasets", {})
    if not isinstance(datasets, dict):
        raise PicomamlError(f"{path}: 'datasets' is not an object (a damaged file?)")
    return datasets


def evaluate_run(
    run_dir: str | Path,
    data_root: Path,
    datasets: Sequence[str] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    device: str = "auto",
    log: Logger | None = stderr_log,
    progress: bool | None = False,
    derived: Mapping[str, Path] | None = None,
) -> Path:
    """Score ``run_dir`` on ``datasets`` (default: see module docstring) read from the
    resolved ``data_root``, and on the ``derived`` test sets; returns results.json.
    ``datasets=[]`` with ``derived`` scores the derived sets alone.

    Every argument is checked and every test set read before the model runs. ``progress``: a
    tqdm bar per dataset (None: only on a terminal).
    """
    if n_resamples < 1:
        raise PicomamlError(f"--n-resamples must be >= 1, got {n_resamples}")
    check_seed(seed, "--seed")
    codes = check_datasets(datasets) if datasets else None
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PicomamlError(f"run dir {run_dir} does not exist")
    extra = load_derived(derived or {})
    only_derived = datasets is not None and not datasets and bool(extra)
    with folder_lock(run_dir, "evaluate"):
        return _evaluate_locked(
            run_dir, data_root, codes, n_resamples, seed, device, log, progress, extra, only_derived
        )


def _evaluate_locked(
    run_dir: Path,
    data_root: Path,
    codes: list[str] | None,
    n_resamples: int,
    seed: int,
    device: str,
    log: Logger | None,
    progress: bool | None,
    extra: dict[str, Any],
    only_derived: bool,
) -> Path:
    say = log or (lambda _msg: None)
    results_path = run_dir / RESULTS_JSON
    previous_datasets(results_path)  # a damaged file stops the command before any work
    remove_stale_temps(run_dir)
    loaded = load_run(run_dir, device=device, data_root=data_root)
    if codes is None:
        codes = [] if only_derived else check_datasets(default_datasets(loaded.run["source"]))
    test_sets = {code: load_sentences(code, "test", data_root, log=say) for code in codes}
    test_sets.update(extra)
    _output_dirs(run_dir)
    out: dict[str, Any] = {}
    for code, (sentences, info) in test_sets.items():
        t0 = time.perf_counter()
        feats = loaded.features([s.tokens for s in sentences], progress, f"evaluate {code}")
        pred = ids_to_tags(decode_features(loaded.tagger, feats, loaded.batch_size))
        p_gold = gold_marginals(loaded.tagger, feats, tag_ids(sentences), loaded.batch_size)
        gold = [list(s.tags) for s in sentences]
        entry = score_dataset(gold, pred, n_resamples, seed)
        entry["read_report"] = info["read_report"]
        if "derived" in info:
            entry["derived"] = info["derived"]
        out[code] = entry
        write_predictions(run_dir / layout.predictions_file(code), sentences, pred)
        write_confidence(run_dir / layout.confidence_file(code), sentences, pred, p_gold)
        lo, hi = entry["bootstrap"]["f1_ci95"]
        say(
            f"evaluate {code}: F1 {entry['default']['micro']['f1']:.4f} "
            f"[{lo:.4f}, {hi:.4f}] strict {entry['strict']['micro']['f1']:.4f} "
            f"({len(sentences)} sentences, {time.perf_counter() - t0:.1f}s)"
        )
    previous = previous_datasets(results_path)
    merged = {k: v for k, v in previous.items() if k not in out} | out
    results = {
        "run": loaded.run,
        "datasets": merged,
        "finetune": to_dict(loaded.cfg),
        "evaluate": {
            "n_resamples": n_resamples,
            "seed": seed,
            "device": str(next(loaded.model.parameters()).device),
        },
        "provenance": provenance(),
    }
    write_json(results_path, results, allow_nan=False)
    say(f"wrote {results_path}")
    return results_path

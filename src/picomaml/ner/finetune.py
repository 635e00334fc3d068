"""Fine-tune a CRF NER head (``head`` regime) or the whole model (``full``) on a UNER source.

Paper defaults: AdamW (lr 3e-5), up to 10 epochs, early stopping on the source's dev micro-F1
(seqeval default mode), the best state restored at the end. Writes the fine-tuning RUN_DIR
described in ``docs/DESIGN.md``: ``finetune.yaml``, ``train_log.jsonl``, ``model/`` and, last,
``run.json`` (its presence means the fine-tune finished).

Head regime: the backbone is frozen, so word features are computed once (:class:`FeatureCache`)
and each epoch only runs the emission layer and the CRF. Full regime: every step runs the
backbone on the batch's windows and back-propagates through it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from picomaml.config import save_config
from picomaml.errors import PicomamlError
from picomaml.ner.config import FinetuneConfig
from picomaml.ner.crf import CRFTagger, iob2_constraints
from picomaml.ner.features import (
    FeatureCache,
    cache_key,
    encode_sentences,
    load_backbone,
    pad_batch,
    tier_of,
    word_features,
)
from picomaml.ner.metrics import entity_scores
from picomaml.seeding import seed_everything

RUN_JSON = "run.json"
FINETUNE_YAML = "finetune.yaml"
TRAIN_LOG = "train_log.jsonl"
HEAD_FILE = "model/crf_head.safetensors"
BACKBONE_DIR = "model/backbone"

Logger = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; an unavailable explicit device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PicomamlError(f"device: {name!r} requested but CUDA is not available")
    return torch.device(name)


def build_tagger(d_model: int, constraints: bool, dropout: float = 0.0) -> CRFTagger:
    """The CRF head over the UNER label set (IOB2 constraints only when asked)."""
    from picomaml.data.labels import LABELS

    allowed = iob2_constraints(list(LABELS)) if constraints else None
    return CRFTagger(d_model, len(LABELS), constraints=allowed, dropout=dropout)


def _report_dict(report: Any) -> Any:
    if report is None:
        return None
    if dataclasses.is_dataclass(report):
        return json.loads(json.dumps(dataclasses.asdict(report), default=str))
    if isinstance(report, dict):
        return json.loads(json.dumps(report, default=str))
    return str(report)


def load_sentences(code: str, split: str, data_dir: str | Path | None, limit: int = 0):
    """Sentences of one split (the first ``limit`` when > 0) and the reader's report.

    The report counts tags the reader mapped to ``O`` (outside PER/LOC/ORG) and repaired
    spans, so a run can say what it trained on.
    """
    from picomaml.data.registry import load_split

    loaded = load_split(code, split, data_dir)
    if isinstance(loaded, tuple):
        sentences, report = loaded
    else:
        sentences, report = loaded, getattr(loaded, "report", None)
    sentences = list(sentences)
    available = len(sentences)
    if limit > 0:
        sentences = sentences[:limit]
    info = {
        "code": code,
        "split": split,
        "n_sentences": len(sentences),
        "n_sentences_available": available,
        "limit": limit,
        "read_report": _report_dict(report),
    }
    return sentences, info


def tag_ids(sentences: Sequence[Any]) -> list[list[int]]:
    """Gold tag ids; a tag outside the label set here is a reader bug, not user data."""
    from picomaml.data.labels import LABEL2ID

    out = []
    for sent in sentences:
        try:
            out.append([LABEL2ID[t] for t in sent.tags])
        except KeyError as exc:
            raise PicomamlError(
                f"sentence {getattr(sent, 'sent_id', '?')}: tag {exc} is not in the label set"
            ) from exc
    return out


def decode_features(
    tagger: CRFTagger, features: Sequence[Tensor], batch_size: int = 64
) -> list[list[int]]:
    """Viterbi tag ids for every sentence (batched; empty sentences give empty paths)."""
    device = next(tagger.parameters()).device
    out: list[list[int]] = []
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            chunk = [f.to(device) for f in features[start : start + batch_size]]
            feats, mask, _ = pad_batch(chunk)
            out.extend(tagger.decode(feats, mask))
    return out


def gold_marginals(
    tagger: CRFTagger,
    features: Sequence[Tensor],
    tags: Sequence[Sequence[int]],
    batch_size: int = 64,
) -> list[list[float]]:
    """CRF marginal probability of each word's gold tag, per sentence (token confidence)."""
    device = next(tagger.parameters()).device
    out: list[list[float]] = []
    with torch.no_grad():
        for start in range(0, len(features), batch_size):
            chunk = [f.to(device) for f in features[start : start + batch_size]]
            feats, mask, gold = pad_batch(chunk, tags[start : start + batch_size])
            probs = tagger.marginals(feats, mask).gather(2, gold.unsqueeze(-1)).squeeze(-1)
            for b, f in enumerate(chunk):
                out.append([float(p) for p in probs[b, : f.shape[0]].tolist()])
    return out


def ids_to_tags(paths: Sequence[Sequence[int]]) -> list[list[str]]:
    """Tag strings from tag ids."""
    from picomaml.data.labels import LABELS

    return [[LABELS[i] for i in path] for path in paths]


def effective_window(cfg_window: int | None, model_config: Any) -> int:
    """The subword window: the config's, capped by (and defaulting to) ``max_seq_len``."""
    max_len = int(model_config.max_seq_len)
    if cfg_window is None:
        return max_len
    if cfg_window > max_len:
        raise PicomamlError(
            f"window: {cfg_window} exceeds the backbone's max_seq_len {max_len}; "
            "set window to null or a smaller value"
        )
    return cfg_window


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise PicomamlError(f"--out {out_dir} exists and is not a directory")
    if (out_dir / RUN_JSON).exists() and not overwrite:
        raise PicomamlError(
            f"{out_dir} already holds a finished fine-tuning run ({RUN_JSON}); "
            "choose another --out or pass --force to overwrite it"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    # Outputs of an earlier run here would describe another model: remove them.
    for name in (RUN_JSON, TRAIN_LOG, "results.json"):
        (out_dir / name).unlink(missing_ok=True)
    for name in ("model", "predictions", "confidence"):
        if (out_dir / name).is_dir():
            shutil.rmtree(out_dir / name)


def _atomic_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _config_dict(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    return dict(vars(config))


def _state_copy(module: torch.nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def dev_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision/recall/F1 in seqeval default mode (the model-selection criterion)."""
    micro = entity_scores(gold, pred, mode="default")["micro"]
    return {k: float(micro[k]) for k in ("f1", "precision", "recall")}


class EarlyStopping:
    """Track the best dev score; stop after ``patience`` evaluations without a strict gain.

    Ties keep the earlier state (fewer updates for the same score).
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = -math.inf
        self.bad = 0

    def update(self, value: float) -> tuple[bool, bool]:
        """Record one evaluation; returns ``(improved, stop)``."""
        if value > self.best:
            self.best, self.bad = value, 0
            return True, False
        self.bad += 1
        return False, self.bad >= self.patience


def finetune(
    cfg: FinetuneConfig,
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    log: Logger | None = _stderr,
) -> Path:
    """Fine-tune as ``cfg`` says and write the RUN_DIR ``out_dir``; returns ``out_dir``."""
    from picomaml.data.paths import resolve_data_dir
    from picomaml.data.tokenizer import EOS_ID, load_tokenizer
    from picomaml.model import save_pico

    say = log or (lambda _msg: None)
    out_dir = Path(out_dir)
    data_root = resolve_data_dir(data_dir)
    # Everything that can fail on user input is checked before the run dir is touched.
    model, resolved = load_backbone(cfg.backbone, cfg.size)
    device = resolve_device(cfg.device)
    window = effective_window(cfg.window, model.config)
    train, train_info = load_sentences(cfg.source, "train", data_root, cfg.max_train_sentences)
    dev, dev_info = load_sentences(cfg.source, cfg.dev_split, data_root, cfg.max_dev_sentences)
    if not train:
        raise PicomamlError(f"source {cfg.source}: the train split has no sentences")
    tokenizer = load_tokenizer(data_root)
    _prepare_out_dir(out_dir, overwrite)
    save_config(cfg, out_dir / FINETUNE_YAML)
    seed_everything(cfg.seed)
    t0 = time.perf_counter()
    enc_train = encode_sentences(tokenizer, [s.tokens for s in train], window)
    enc_dev = encode_sentences(tokenizer, [s.tokens for s in dev], window)
    y_train = tag_ids(train)
    n_train = [len(s.tokens) for s in train]
    n_dev = [len(s.tokens) for s in dev]
    gold_dev = [list(s.tags) for s in dev]

    model.to(device)
    tagger = build_tagger(int(model.config.d_model), cfg.constraints, cfg.dropout).to(device)
    full = cfg.regime == "full"
    for p in model.parameters():
        p.requires_grad_(full)

    train_cache = dev_cache = None
    if not full:
        model.eval()
        cache_dir = Path(cfg.feature_cache_dir) if cfg.feature_cache_dir else None

        def _path(sents: Sequence[Any]) -> Path | None:
            if cache_dir is None:
                return None
            return cache_dir / f"{cache_key(resolved.folder, [s.tokens for s in sents], window)}.pt"

        train_cache = FeatureCache.build(
            model, enc_train, n_train, cfg.feature_batch_size, _path(train)
        )
        dev_cache = FeatureCache.build(model, enc_dev, n_dev, cfg.feature_batch_size, _path(dev))
        train_cache.flat = train_cache.flat.to(device)
    features_s = time.perf_counter() - t0
    say(
        f"finetune: {len(train)} train / {len(dev)} dev sentences, window {window}, "
        f"regime {cfg.regime}, device {device} (features/encoding {features_s:.1f}s)"
    )

    params = list(tagger.parameters()) + (list(model.parameters()) if full else [])
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)

    def evaluate_dev() -> dict[str, float]:
        tagger.eval()
        if full:
            model.eval()
            with torch.no_grad():
                feats = word_features(model, enc_dev, n_dev, cfg.feature_batch_size, EOS_ID)
            model.train()
        else:
            feats = dev_cache.as_list()
        pred = ids_to_tags(decode_features(tagger, feats, cfg.feature_batch_size))
        tagger.train()
        return dev_scores(gold_dev, pred)

    log_fh = (out_dir / TRAIN_LOG).open("w", encoding="utf-8")
    best = {"f1": -1.0, "epoch": 0, "step": 0, "precision": 0.0, "recall": 0.0}
    best_head = best_backbone = None
    stopper = EarlyStopping(cfg.patience)
    step, stopped_early, last_eval_step = 0, False, -1
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    epoch_seconds: list[float] = []
    window_losses: list[float] = []
    t_train = time.perf_counter()
    tagger.train()
    if full:
        model.train()

    def run_eval(epoch: int) -> bool:
        """Evaluate on dev, log, keep the best state; True when patience is exhausted."""
        nonlocal best_head, best_backbone, last_eval_step
        scores = evaluate_dev()
        last_eval_step = step
        log_fh.write(json.dumps({"kind": "dev", "step": step, "epoch": epoch, **scores}) + "\n")
        log_fh.flush()
        say(f"  epoch {epoch} step {step}: dev F1 {scores['f1']:.4f}")
        improved, stop = stopper.update(scores["f1"])
        if improved:
            best.update(scores, epoch=epoch, step=step)
            best_head = _state_copy(tagger)
            best_backbone = _state_copy(model) if full else None
        return stop

    try:
        for epoch in range(1, cfg.epochs + 1):
            t_epoch = time.perf_counter()
            order = torch.randperm(len(train), generator=gen).tolist()
            for start in range(0, len(order), cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                if full:
                    feats = word_features(
                        model,
                        [enc_train[i] for i in idx],
                        [n_train[i] for i in idx],
                        cfg.feature_batch_size,
                        EOS_ID,
                    )
                else:
                    feats = [train_cache[i] for i in idx]
                x, mask, y = pad_batch(feats, [y_train[i] for i in idx])
                loss = tagger.nll(x, y, mask)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                step += 1
                window_losses.append(float(loss.detach()))
                if step % cfg.log_every == 0:
                    mean = sum(window_losses) / len(window_losses)
                    log_fh.write(
                        json.dumps({"kind": "train", "step": step, "epoch": epoch, "loss": mean})
                        + "\n"
                    )
                    window_losses = []
                if cfg.eval_every and step % cfg.eval_every == 0 and run_eval(epoch):
                    stopped_early = True
                    break
            epoch_seconds.append(time.perf_counter() - t_epoch)
            if stopped_early:
                break
            if not cfg.eval_every and run_eval(epoch):
                stopped_early = True
                break
        if last_eval_step != step:
            run_eval(epoch)
    finally:
        log_fh.close()
    train_s = time.perf_counter() - t_train

    tagger.load_state_dict(best_head)
    (out_dir / "model").mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in best_head.items()}, str(out_dir / HEAD_FILE))
    if full:
        model.load_state_dict(best_backbone)
        save_pico(model, out_dir / BACKBONE_DIR)
    run = {
        "backbone": str(resolved.folder),
        "backbone_requested": resolved.requested,
        "backbone_config": _config_dict(model.config),
        "source": cfg.source,
        "regime": cfg.regime,
        "seed": cfg.seed,
        "variant": resolved.variant,
        "size": cfg.size or tier_of(model.config),
        "pretrain_step": resolved.step,
        "best_epoch": int(best["epoch"]),
        "best_step": int(best["step"]),
        "best_dev_f1": float(best["f1"]),
        "dev_split": cfg.dev_split,
        "epochs_run": len(epoch_seconds),
        "steps": step,
        "steps_per_epoch": steps_per_epoch,
        "stopped_early": stopped_early,
        "window": window,
        "learning_rate": cfg.learning_rate,
        "data": {"train": train_info, "dev": dev_info},
        "timing": {
            "features_s": features_s,
            "train_s": train_s,
            "epoch_s": epoch_seconds,
            "device": str(device),
        },
    }
    _atomic_json(out_dir / RUN_JSON, run)
    say(
        f"finetune: best dev F1 {best['f1']:.4f} at epoch {best['epoch']} "
        f"(step {best['step']}); wrote {out_dir}"
    )
    return out_dir


def load_head(run_dir: Path, d_model: int, constraints: bool) -> CRFTagger:
    """The trained CRF head of a run (the file must exist)."""
    path = run_dir / HEAD_FILE
    if not path.is_file():
        raise PicomamlError(f"run dir {run_dir} is missing {HEAD_FILE}")
    tagger = build_tagger(d_model, constraints)
    state = load_file(str(path))
    try:
        tagger.load_state_dict(state)
    except RuntimeError as exc:
        raise PicomamlError(
            f"{path}: does not fit a CRF head with d_model {d_model} ({exc})"
        ) from exc
    return tagger

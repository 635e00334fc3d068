"""Fine-tune a CRF NER head (``head`` regime) or the whole model (``full``) on a UNER source.

Paper defaults: AdamW (lr 3e-5), up to 10 epochs, early stopping on the source's dev micro-F1
(seqeval default mode), the best state restored at the end. Writes the fine-tuning RUN_DIR
described in ``docs/DESIGN.md``: ``finetune.yaml``, ``train_log.jsonl``, ``model/`` and, last,
``run.json`` (its presence means the fine-tune finished).

Head regime: the backbone is frozen, so word features are computed once (:class:`FeatureCache`)
and each epoch only runs the emission layer and the CRF. Full regime: every step runs the
backbone on the batch's windows and back-propagates through it.

Faults: the run holds ``out_dir``'s lock (:mod:`picomaml.locks`) from start to end, so a
second run with the same ``--out`` fails at once; it removes temporary files a killed run
left there; a non-finite training loss (or best state) stops it with an error, and it is then
not marked finished (no ``run.json``).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from torch import Tensor

from picomaml import layout
from picomaml.config import save_config
from picomaml.data.tokenizer import EOS_ID, load_tokenizer
from picomaml.data.uner import Sentence
from picomaml.errors import PicomamlError
from picomaml.fileio import (
    atomic_writer,
    jsonl_line,
    remove_stale_temps,
    write_json,
    write_with,
)
from picomaml.locks import folder_lock
from picomaml.model import PicoConfig, PicoDecoder, check_vocab, save_pico
from picomaml.model.backbone import ResolvedBackbone, load_backbone, tier_of
from picomaml.ner.config import FinetuneConfig
from picomaml.ner.crf import CRFTagger
from picomaml.ner.features import (
    FeatureCache,
    Window,
    cache_key,
    encode_sentences,
    pad_batch,
    word_features,
)
from picomaml.ner.head import (
    Logger,
    build_tagger,
    decode_features,
    ids_to_tags,
    load_sentences,
    progress_bar,
    resolve_device,
    stderr_log,
    tag_ids,
)
from picomaml.ner.metrics import entity_scores
from picomaml.ner.train_data import read_extra_train, training_sentences
from picomaml.seeding import seed_everything


def effective_window(cfg_window: int | None, model_config: PicoConfig) -> int:
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


# --- prepare -------------------------------------------------------------------------------


@dataclass
class Split:
    """One data split, encoded: sentences, their subword windows and word counts."""

    sentences: list[Sentence]
    info: dict[str, Any]
    encoded: list[list[Window]] = field(default_factory=list)
    n_words: list[int] = field(default_factory=list)
    cache: FeatureCache | None = None
    n_extra: int = 0  # trailing sentences from ``extra_train`` (never read from a cache)


@dataclass
class Prepared:
    """Everything a fine-tuning run trains on, built before the first update."""

    model: PicoDecoder
    resolved: ResolvedBackbone
    tagger: CRFTagger
    device: torch.device
    window: int
    train: Split
    dev: Split
    features_s: float


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise PicomamlError(f"--out {out_dir} exists and is not a directory")
    if (out_dir / layout.RUN_JSON).exists() and not overwrite:
        raise PicomamlError(
            f"{out_dir} already holds a finished fine-tuning run ({layout.RUN_JSON}); "
            "choose another --out or pass --force to overwrite it"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)
    # Outputs of an earlier run here would describe another model: remove them.
    for name in (layout.RUN_JSON, layout.TRAIN_LOG, layout.RESULTS_JSON, layout.SAMPLING_JSON):
        (out_dir / name).unlink(missing_ok=True)
    for name in (layout.MODEL_DIR, layout.PREDICTIONS_DIR, layout.CONFIDENCE_DIR):
        if (out_dir / name).is_dir():
            shutil.rmtree(out_dir / name)


def _encode(split: Split, tokenizer: Tokenizer, window: int) -> None:
    split.encoded = encode_sentences(tokenizer, [s.tokens for s in split.sentences], window)
    split.n_words = [len(s.tokens) for s in split.sentences]


def prepare(
    cfg: FinetuneConfig,
    out_dir: Path,
    data_root: Path,
    overwrite: bool,
    say: Logger | None = None,
    progress: bool | None = False,
) -> Prepared:
    """Check every input, then clear ``out_dir`` and encode the data (and, in the head
    regime, compute the frozen features once). Seeds the run.

    ``say`` gets a line for each data file the reader changed (tags read as O, repairs);
    ``progress``: a tqdm bar per split while features are computed (None: on a terminal).
    """
    # Everything that can fail on user input is checked before the run dir is touched.
    model, resolved = load_backbone(cfg.backbone, cfg.size)
    device = resolve_device(cfg.device)
    window = effective_window(cfg.window, model.config)
    train = Split(*load_sentences(cfg.source, "train", data_root, cfg.max_train_sentences, say))
    dev = Split(*load_sentences(cfg.source, cfg.dev_split, data_root, cfg.max_dev_sentences, say))
    if not train.sentences:
        raise PicomamlError(f"source {cfg.source}: the train split has no sentences")
    extra, extra_info = read_extra_train(cfg.extra_train) if cfg.extra_train else ([], None)
    tokenizer = load_tokenizer(data_root)
    check_vocab(model.config, tokenizer.get_vocab_size(), f"backbone {resolved.requested}")
    _prepare_out_dir(out_dir, overwrite)
    save_config(cfg, out_dir / layout.FINETUNE_YAML)
    seed_everything(cfg.seed)
    train.sentences, sampling = training_sentences(train.sentences, cfg.sampling, cfg.seed, extra)
    train.n_extra = len(extra)
    train.info.update(sampling=cfg.sampling, extra_train=extra_info)
    if sampling is not None:
        write_json(out_dir / layout.SAMPLING_JSON, sampling)
    t0 = time.perf_counter()
    _encode(train, tokenizer, window)
    _encode(dev, tokenizer, window)

    model.to(device)
    tagger = build_tagger(int(model.config.d_model), cfg.constraints, cfg.dropout).to(device)
    full = cfg.regime == "full"
    for p in model.parameters():
        p.requires_grad_(full)
    if not full:
        model.eval()
        for name, split in (("train", train), ("dev", dev)):
            n_windows = sum(len(windows) for windows in split.encoded)
            with progress_bar(f"features {cfg.source} {name}", n_windows, progress) as update:
                split.cache = _frozen_features(cfg, model, resolved, window, split, update)
        assert train.cache is not None
        train.cache.flat = train.cache.flat.to(device)
    features_s = time.perf_counter() - t0
    return Prepared(model, resolved, tagger, device, window, train, dev, features_s)


def _frozen_features(
    cfg: FinetuneConfig,
    model: PicoDecoder,
    resolved: ResolvedBackbone,
    window: int,
    split: Split,
    update: Any,
) -> FeatureCache:
    """Frozen-backbone features of ``split``: the source part from the on-disk cache when
    ``feature_cache_dir`` is set, the ``extra_train`` part always computed (it changes with
    every few-shot draw, the source part does not)."""
    cache_dir = Path(cfg.feature_cache_dir) if cfg.feature_cache_dir else None
    cut = len(split.sentences) - split.n_extra
    parts = []
    for lo, hi, cached in ((0, cut, True), (cut, len(split.sentences), False)):
        if lo == hi:
            continue
        path = None
        if cache_dir is not None and cached:
            words = [s.tokens for s in split.sentences[lo:hi]]
            path = cache_dir / f"{cache_key(resolved.folder, words, window)}.pt"
        parts.append(
            FeatureCache.build(
                model,
                split.encoded[lo:hi],
                split.n_words[lo:hi],
                cfg.feature_batch_size,
                path,
                update,
            )
        )
    return parts[0] if len(parts) == 1 else FeatureCache.concat(parts)


# --- train ---------------------------------------------------------------------------------


def _state_copy(module: torch.nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


@dataclass
class Outcome:
    """What training produced: the best state (by source dev F1) and how the run went."""

    best: dict[str, float] = field(
        default_factory=lambda: {"f1": -1.0, "epoch": 0, "step": 0, "precision": 0.0, "recall": 0.0}
    )
    best_head: dict[str, Tensor] | None = None
    best_backbone: dict[str, Tensor] | None = None
    steps: int = 0
    stopped_early: bool = False
    epoch_seconds: list[float] = field(default_factory=list)
    train_s: float = 0.0


class _Training:
    """The epoch loop of one run; ``log`` receives the ``train_log.jsonl`` lines."""

    def __init__(self, cfg: FinetuneConfig, prep: Prepared, log: IO[str], say: Logger) -> None:
        self.cfg, self.prep, self.log, self.say = cfg, prep, log, say
        self.full = cfg.regime == "full"
        self.y_train = tag_ids(prep.train.sentences)
        self.gold_dev = [list(s.tags) for s in prep.dev.sentences]
        self.params = list(prep.tagger.parameters()) + (
            list(prep.model.parameters()) if self.full else []
        )
        self.optimizer = torch.optim.AdamW(
            self.params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.stopper = EarlyStopping(cfg.patience)
        self.out = Outcome()
        self.last_eval_step = -1
        self.losses: list[float] = []  # since the last train log line (spans epochs)

    def _features(self, split: Split, idx: Sequence[int] | None = None) -> list[Tensor]:
        """Word features of ``split`` (the sentences ``idx``; all when None)."""
        if not self.full:
            assert split.cache is not None
            return split.cache.as_list() if idx is None else [split.cache[i] for i in idx]
        enc, n = split.encoded, split.n_words
        if idx is not None:
            enc, n = [enc[i] for i in idx], [n[i] for i in idx]
        return word_features(self.prep.model, enc, n, self.cfg.feature_batch_size, EOS_ID)

    def _dev_scores(self) -> dict[str, float]:
        tagger, model = self.prep.tagger, self.prep.model
        tagger.eval()
        if self.full:
            model.eval()
            with torch.no_grad():
                feats = self._features(self.prep.dev)
            model.train()
        else:
            feats = self._features(self.prep.dev)
        pred = ids_to_tags(decode_features(tagger, feats, self.cfg.feature_batch_size))
        tagger.train()
        return dev_scores(self.gold_dev, pred)

    def evaluate(self, epoch: int) -> bool:
        """Evaluate on dev, log, keep the best state; True when patience is exhausted."""
        out = self.out
        scores = self._dev_scores()
        self.last_eval_step = out.steps
        self.log.write(jsonl_line({"kind": "dev", "step": out.steps, "epoch": epoch, **scores}))
        self.log.flush()
        self.say(f"  epoch {epoch} step {out.steps}: dev F1 {scores['f1']:.4f}")
        improved, stop = self.stopper.update(scores["f1"])
        if improved:
            out.best.update(scores, epoch=epoch, step=out.steps)
            out.best_head = _state_copy(self.prep.tagger)
            out.best_backbone = _state_copy(self.prep.model) if self.full else None
        return stop

    def _epoch(self, epoch: int) -> bool:
        """One pass over the shuffled train set; True when early stopping ends the run."""
        cfg, out = self.cfg, self.out
        order = torch.randperm(len(self.y_train), generator=self.gen).tolist()
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            feats = self._features(self.prep.train, idx)
            x, mask, y = pad_batch(feats, [self.y_train[i] for i in idx])
            loss = self.prep.tagger.nll(x, y, mask)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
            self.optimizer.step()
            out.steps += 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise PicomamlError(
                    f"non-finite training loss ({value}) at step {out.steps} (epoch {epoch}); "
                    f"the run is not marked finished. Lower lr.{cfg.regime} (now "
                    f"{cfg.learning_rate:g}) or grad_clip, or check the backbone"
                )
            self.losses.append(value)
            if out.steps % cfg.log_every == 0:
                mean = sum(self.losses) / len(self.losses)
                record = {"kind": "train", "step": out.steps, "epoch": epoch, "loss": mean}
                self.log.write(jsonl_line(record))
                self.losses = []
            if cfg.eval_every and out.steps % cfg.eval_every == 0 and self.evaluate(epoch):
                return True
        return False

    def run(self) -> Outcome:
        cfg, out = self.cfg, self.out
        t_train = time.perf_counter()
        self.prep.tagger.train()
        if self.full:
            self.prep.model.train()
        epoch = 0
        for epoch in range(1, cfg.epochs + 1):
            t_epoch = time.perf_counter()
            stop = self._epoch(epoch)
            out.epoch_seconds.append(time.perf_counter() - t_epoch)
            if stop or (not cfg.eval_every and self.evaluate(epoch)):
                out.stopped_early = True
                break
        if self.last_eval_step != out.steps:
            self.evaluate(epoch)
        out.train_s = time.perf_counter() - t_train
        return out


def train(cfg: FinetuneConfig, prep: Prepared, log: IO[str], say: Logger) -> Outcome:
    """Train the head (and, in the full regime, the backbone) with early stopping on the
    source dev micro-F1; the training log lines go to ``log``."""
    return _Training(cfg, prep, log, say).run()


# --- write ---------------------------------------------------------------------------------


def write_run(cfg: FinetuneConfig, prep: Prepared, out: Outcome, out_dir: Path) -> None:
    """Restore the best state, write ``model/`` and then, last, ``run.json``."""
    assert out.best_head is not None
    for name, tensor in {**out.best_head, **(out.best_backbone or {})}.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise PicomamlError(
                f"the best state has non-finite values in {name}; the run is not marked "
                f"finished. Lower lr.{cfg.regime} (now {cfg.learning_rate:g}) or grad_clip"
            )
    prep.tagger.load_state_dict(out.best_head)
    (out_dir / layout.MODEL_DIR).mkdir(exist_ok=True)
    tensors = {k: v.contiguous() for k, v in out.best_head.items()}
    write_with(
        out_dir / layout.CRF_HEAD,
        lambda tmp: save_file(tensors, str(tmp)),
    )
    model, resolved = prep.model, prep.resolved
    if cfg.regime == "full":
        model.load_state_dict(out.best_backbone)
        save_pico(model, out_dir / layout.BACKBONE_DIR)
    run = {
        "backbone": str(resolved.folder),
        "backbone_requested": resolved.requested,
        "backbone_hub": resolved.hub,
        "backbone_config": dataclasses.asdict(model.config),
        "source": cfg.source,
        "regime": cfg.regime,
        "seed": cfg.seed,
        "variant": resolved.variant,
        "size": cfg.size or tier_of(model.config),
        "pretrain_step": resolved.step,
        "best_epoch": int(out.best["epoch"]),
        "best_step": int(out.best["step"]),
        "best_dev_f1": float(out.best["f1"]),
        "dev_split": cfg.dev_split,
        "epochs_run": len(out.epoch_seconds),
        "steps": out.steps,
        "steps_per_epoch": math.ceil(len(prep.train.sentences) / cfg.batch_size),
        "stopped_early": out.stopped_early,
        "window": prep.window,
        "learning_rate": cfg.learning_rate,
        "sampling": cfg.sampling,
        "data": {"train": prep.train.info, "dev": prep.dev.info},
        "timing": {
            "features_s": prep.features_s,
            "train_s": out.train_s,
            "epoch_s": out.epoch_seconds,
            "device": str(prep.device),
        },
    }
    write_json(out_dir / layout.RUN_JSON, run, allow_nan=False)


def finetune(
    cfg: FinetuneConfig,
    out_dir: str | Path,
    data_root: Path,
    overwrite: bool = False,
    log: Logger | None = stderr_log,
    progress: bool | None = False,
) -> Path:
    """Fine-tune as ``cfg`` says on data under the resolved ``data_root`` and write the
    RUN_DIR ``out_dir``; returns ``out_dir``.

    ``progress``: tqdm bars while features are computed (None: only on a terminal).
    """
    out_dir = Path(out_dir)
    with folder_lock(out_dir, "finetune"):
        return _finetune_locked(cfg, out_dir, data_root, overwrite, log, progress)


def _finetune_locked(
    cfg: FinetuneConfig,
    out_dir: Path,
    data_root: Path,
    overwrite: bool,
    log: Logger | None,
    progress: bool | None,
) -> Path:
    say = log or (lambda _msg: None)
    prep = prepare(cfg, out_dir, data_root, overwrite, say, progress)
    say(
        f"finetune: {len(prep.train.sentences)} train / {len(prep.dev.sentences)} dev "
        f"sentences, window {prep.window}, regime {cfg.regime}, device {prep.device} "
        f"(features/encoding {prep.features_s:.1f}s)"
    )
    # The log appears, complete, when training ends (a failed run leaves no partial log).
    with atomic_writer(out_dir / layout.TRAIN_LOG) as log_fh:
        outcome = train(cfg, prep, log_fh, say)
    write_run(cfg, prep, outcome, out_dir)
    best = outcome.best
    say(
        f"finetune: best dev F1 {best['f1']:.4f} at epoch {best['epoch']} "
        f"(step {best['step']}); wrote {out_dir}"
    )
    return out_dir

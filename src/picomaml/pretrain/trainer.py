"""Hybrid pretraining loop on Lightning Fabric: autoregressive steps and first-order MAML
episodes, mixed per micro-batch (the paper's Algorithm 1).

One optimizer step, read top to bottom (:meth:`_Run.train_step`):

1. rank 0 draws the branch of each of the step's micro-batches, Bernoulli(``rho``) from
   a seeded generator (or one draw for the whole step), and broadcasts the draws;
2. each micro-batch computes its loss: ``ar_loss`` on this rank's shard of the global
   micro-batch of rows (``micro_batch_size`` x world size rows), or ``episode_loss``
   on an SMLMT episode that every rank draws identically from a shared seed, each rank
   encoding its shard of the windows (support features are all-gathered);
3. ``fabric.backward(loss / accumulation_steps)`` under ``no_backward_sync`` except on
   the last micro-batch, so DDP averages the accumulated gradients once;
4. the meta head (outside DDP) has its gradients averaged over ranks by hand;
5. non-finite losses stop the run; gradients are clipped (global L2 norm of backbone and
   head together); AdamW step, scheduler step, ``zero_grad``;
6. logging (``metrics.jsonl``, progress bar, optional Fabric loggers), learning
   dynamics and checkpoints at their cadences.

With the same global batch, the gradients equal those of a single-process run, so the
parameters agree across world sizes (``tests/test_distributed.py``), and stopping and
resuming gives bit-identical parameters (``tests/test_trainer.py``).

SMLMT episodes are drawn from a pool made of the first ``meta.pool_tokens`` tokens
(whole packed rows, in file order) of the training corpus, the same rows on every rank.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from picomaml.config import load_yaml, save_config, to_dict
from picomaml.errors import PicomamlError
from picomaml.pretrain import checkpoint as ckpt
from picomaml.pretrain import dynamics
from picomaml.pretrain.config import PretrainConfig
from picomaml.pretrain.maml import MetaHead, episode_loss
from picomaml.pretrain.schedule import build_scheduler
from picomaml.pretrain.steps import ar_loss, build_sampler
from picomaml.seeding import seed_everything

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.yaml"
# Config sections whose change would make a resumed run a different run.
_RESUME_KEYS = ("model", "data", "training", "meta")
_RESUME_IGNORED = {("training", "precision")}
_EPISODE_KEYS = (
    "support_acc_before",
    "support_acc_after",
    "query_acc",
    "head_weight_mean",
    "head_weight_std",
    "head_grad_norm",
)
_STATS = ("ar_loss", "n_ar", "meta_loss", "n_meta", "bad_ar", "bad_meta", *_EPISODE_KEYS)
_IDX = {name: i for i, name in enumerate(_STATS)}


# --- Fabric ------------------------------------------------------------------------------


def build_fabric(
    cfg: PretrainConfig, run_dir: str | Path | None = None
):  # -> lightning.fabric.Fabric
    """Fabric from ``cfg.runtime`` and ``cfg.training.precision`` (not yet launched).

    ``ddp`` (and ``auto`` with more than one device or node) becomes
    :func:`ddp_strategy` (``find_unused_parameters=True`` when episodes run, because a
    MAML micro-batch never touches the vocabulary projection); ``devices: auto`` or
    ``-1`` counts as possibly several. Every other strategy name is passed to Fabric
    unchanged, so ``torchrun`` and SLURM launches work as Fabric documents.
    """
    from lightning.fabric import Fabric

    rt = cfg.runtime
    multi = rt.num_nodes > 1 or rt.devices not in (1, "1")
    strategy: Any = rt.strategy
    if rt.strategy == "ddp" or (rt.strategy == "auto" and multi):
        strategy = ddp_strategy(find_unused_parameters=cfg.meta.enabled and cfg.meta.rho > 0)
    accelerator = rt.accelerator
    cuda = accelerator in ("cuda", "gpu") or (accelerator == "auto" and torch.cuda.is_available())
    precision = cfg.training.resolved_precision(cuda)
    return Fabric(
        accelerator=accelerator,
        devices=rt.devices,
        num_nodes=rt.num_nodes,
        strategy=strategy,
        precision=precision,  # type: ignore[arg-type]
        loggers=_loggers(cfg, run_dir),
    )


def ddp_strategy(
    find_unused_parameters: bool = True, **kwargs: Any
):  # -> lightning.fabric.strategies.DDPStrategy
    """DDP as the hybrid loop needs it: unused parameters allowed when episodes run
    (they skip the vocabulary projection) and no per-forward buffer sync (the RoPE
    tables are constants). ``kwargs`` go to ``DDPStrategy`` (``start_method="spawn"``)."""
    import inspect

    from lightning.fabric.strategies import DDPStrategy
    from torch.nn.parallel import DistributedDataParallel

    params = inspect.signature(DistributedDataParallel.__init__).parameters
    sync = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    return DDPStrategy(find_unused_parameters=find_unused_parameters, **{sync: False}, **kwargs)


def _loggers(cfg: PretrainConfig, run_dir: str | Path | None) -> list[Any]:
    """TensorBoard / W&B loggers, only when enabled (both are optional installs)."""
    out: list[Any] = []
    root = Path(run_dir) if run_dir is not None else Path("runs")
    if cfg.logging.tensorboard:
        if not (
            importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
        ):
            raise PicomamlError(
                "logging.tensorboard is true but neither 'tensorboard' nor 'tensorboardX' is "
                "installed (pip install tensorboard), or set logging.tensorboard=false"
            )
        from lightning.fabric.loggers import TensorBoardLogger

        out.append(TensorBoardLogger(root_dir=str(root / "tensorboard"), name="", version=""))
    if cfg.logging.wandb:
        if not importlib.util.find_spec("wandb"):
            raise PicomamlError(
                "logging.wandb is true but 'wandb' is not installed (pip install wandb), "
                "or set logging.wandb=false"
            )
        from lightning.pytorch.loggers import WandbLogger

        out.append(WandbLogger(project=cfg.logging.wandb_project, save_dir=str(root)))
    return out


# --- public entry --------------------------------------------------------------------------


def run_pretraining(
    cfg: PretrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    data_dir: str | Path | None = None,
    fabric: Any = None,
    stop_at_step: int | None = None,
) -> Path:
    """Pretrain as ``cfg`` says, writing ``run_dir`` (see docs/pretraining-run.md).

    ``fabric``: an already launched Fabric (tests, or callers with their own launch);
    by default one is built from ``cfg.runtime`` and launched here. ``resume`` continues
    from ``checkpoints/latest`` (or starts fresh when there is none). ``stop_at_step``
    ends the run early after that step's checkpoint, with the schedule still that of
    ``training.max_steps`` (for time-limited jobs; resume later). Returns ``run_dir``.
    """
    run_dir = Path(run_dir)
    if fabric is None:
        fabric = build_fabric(cfg, run_dir)
        fabric.launch()
    _Run(fabric, cfg, run_dir, data_dir=data_dir, resume=resume).train(stop_at_step)
    return run_dir


# --- data ----------------------------------------------------------------------------------


@dataclass
class _Data:
    """Training rows, the SMLMT token pool, the held-out rows and the tokenizer."""

    loader: Any
    pool: np.ndarray | None
    train_probe: Tensor
    valid: Any | None
    tokenizer: Any = field(repr=False)


def corpus_passes(cfg: PretrainConfig, n_rows: int) -> float:
    """Upper bound on passes over a local corpus of ``n_rows`` rows (every micro-batch AR).

    Why: a preset pointed at a small corpus cycles over it silently; saying how often
    each row repeats lets a user see that before spending GPU hours.
    """
    return cfg.training.max_steps * cfg.training.batch_size / max(1, n_rows)


def _load_data(cfg: PretrainConfig, data_dir: str | Path | None, rank: int, world: int) -> _Data:
    from picomaml.data.corpus import HubRowStream, RowLoader, load_rows
    from picomaml.data.paths import resolve_data_dir
    from picomaml.data.tokenizer import load_tokenizer

    root = resolve_data_dir(data_dir)
    tokenizer = load_tokenizer(root)
    d = cfg.data
    probe_n = cfg.dynamics.eval_batch_size

    def rows_of(path: str | Path, kind: str):
        return load_rows(path, d.seq_len, kind, tokenizer, d.text_field, d.cache_dir)

    valid_path = d.valid_path(root)
    valid_kind = "auto" if d.kind == "hub" else d.kind  # a hub run's valid split is local
    valid = rows_of(valid_path, valid_kind) if valid_path is not None else None
    if d.kind == "hub":
        loader = HubRowStream(d.corpus, d.seq_len, rank=rank, world_size=world)
        # The stream's first rows serve as the SMLMT pool and the dynamics probe batch.
        pool_rows = -(-(cfg.meta.pool_tokens or 4_000_000) // (d.seq_len + 1))
        n = max(pool_rows, probe_n) if cfg.meta.enabled else probe_n
        head_rows = HubRowStream(d.corpus, d.seq_len).next_rows(n).numpy()
        return _Data(loader, head_rows, torch.from_numpy(head_rows[:probe_n]), valid, tokenizer)

    train = rows_of(d.corpus_path(root), d.kind)
    if d.max_train_tokens is not None:
        keep = max(1, d.max_train_tokens // (d.seq_len + 1))
        train.rows = train.rows[:keep]
    loader = RowLoader(train, seed=cfg.training.seed, shuffle=True, rank=rank, world_size=world)
    probe = torch.from_numpy(np.asarray(train.rows[:probe_n], dtype=np.int64))
    return _Data(loader, train.rows, probe, valid, tokenizer)


# --- the run -------------------------------------------------------------------------------


class _Run:
    """State of one pretraining run on one rank; :meth:`train` is the loop."""

    def __init__(
        self,
        fabric: Any,
        cfg: PretrainConfig,
        run_dir: Path,
        *,
        data_dir: str | Path | None,
        resume: bool,
    ) -> None:
        self.fabric, self.cfg, self.run_dir = fabric, cfg, run_dir
        self.rank, self.world = fabric.global_rank, fabric.world_size
        self.accum = cfg.training.accumulation_steps(self.world)
        self.ckpt_root = run_dir / cfg.checkpointing.dir
        self.meta_on = cfg.meta.enabled and cfg.meta.rho > 0
        if _is_fsdp(fabric):
            raise PicomamlError(
                "runtime.strategy=fsdp: Fabric can launch it, but this trainer's checkpoints "
                "(a full Pico folder plus optimizer state) are not implemented for sharded "
                "parameters; use ddp (every Pico tier fits on one GPU)"
            )
        self._check_world()
        resume_from = self._prepare_run_dir(resume)

        self.data = _load_data(cfg, data_dir, self.rank, self.world)
        local = getattr(self.data.loader, "rows", None)  # TokenRows; None when streaming
        passes = corpus_passes(cfg, local.n_rows) if local is not None else 0.0
        if self.rank == 0 and passes > 1:
            print(
                f"pretrain: note: the run reads up to {passes:.1f} passes over its corpus "
                f"({local.n_rows:,} rows of {cfg.data.seq_len + 1} tokens); rows repeat",
                file=sys.stderr,
                flush=True,
            )
        self.sampler = None
        if self.meta_on:
            from picomaml.data.tokenizer import MASK_ID
            from picomaml.pretrain.smlmt import decode_vocab

            assert self.data.pool is not None
            vocab = decode_vocab(self.data.tokenizer)
            self.sampler = build_sampler(cfg.meta, self.data.pool, vocab, MASK_ID)

        # Model, head, optimizer and schedule: identical on every rank (seeded).
        from picomaml.model import PicoDecoder

        seed_everything(cfg.training.seed)
        pico = _pico_config(cfg)
        model = PicoDecoder(pico)
        head = MetaHead.from_config(pico.d_model, cfg.meta) if cfg.meta.enabled else None
        self.step, self.tokens = 0, 0
        self.branch_rng = np.random.default_rng([cfg.training.seed, 0xB7A2C4])
        self.episode_rng = np.random.default_rng([cfg.training.seed, 0xE915])
        state = None
        if resume_from is not None:
            loaded, head_state, state = ckpt.load_checkpoint(resume_from)
            model.load_state_dict(loaded.state_dict())
            if head is not None:
                if head_state is None:
                    raise PicomamlError(f"{resume_from}: no {ckpt.HEAD_FILE} for the meta head")
                head.load_state_dict(head_state)

        self.raw_model, self.head = model, head
        self.model = fabric.setup_module(model)
        self.model.mark_forward_method("hidden_states")
        if head is not None:
            head.to(fabric.device)
        optimizer = torch.optim.AdamW(
            _param_groups(model, head, cfg),
            lr=cfg.training.lr,
            betas=tuple(cfg.training.betas),
            eps=cfg.training.eps,
        )
        self.scheduler = build_scheduler(optimizer, cfg.training)
        if state is not None:
            optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self._restore(state)
        self.raw_optimizer = optimizer
        self.optimizer = fabric.setup_optimizers(optimizer)
        self.valid_batches = self._valid_batches()

    # -- setup helpers ----------------------------------------------------------------------

    def _check_world(self) -> None:
        m = self.cfg.meta
        if self.meta_on and (m.ways * m.shots % self.world or m.ways * m.queries % self.world):
            raise PicomamlError(
                f"meta.ways x shots = {m.ways * m.shots} and ways x queries = "
                f"{m.ways * m.queries} windows must divide evenly over {self.world} ranks"
            )

    def _prepare_run_dir(self, resume: bool) -> Path | None:
        """Decide fresh start vs resume; write ``config.yaml`` (rank 0)."""
        latest = ckpt.latest_checkpoint(self.ckpt_root)
        if latest is not None and not resume:
            raise PicomamlError(
                f"{self.run_dir} already holds checkpoints (latest: {latest.name}); pass "
                "--resume to continue that run or choose another --run-dir"
            )
        saved = self.run_dir / CONFIG_FILE
        if latest is not None and saved.is_file():
            _check_same_run(load_yaml(saved), to_dict(self.cfg), saved)
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.cfg, saved)
            step = int(latest.name.split("_")[1]) if latest is not None else 0
            _truncate_metrics(self.run_dir / METRICS_FILE, step)
        self.fabric.barrier()
        return latest

    def _restore(self, state: dict[str, Any]) -> None:
        self.step, self.tokens = int(state["step"]), int(state["tokens"])
        ckpt.restore_rng(state["rng"])
        ckpt.set_generator_state(self.branch_rng, state["branch_rng"])
        ckpt.set_generator_state(self.episode_rng, state["episode_rng"])
        self.data.loader.load_state_dict(state["data"])

    def _valid_batches(self) -> list[Tensor]:
        """Fixed held-out batches (file order) for perplexity: the same at every step."""
        v, dyn = self.data.valid, self.cfg.dynamics
        if v is None:
            return []
        n = min(v.n_rows, dyn.eval_batches * dyn.eval_batch_size)
        rows = torch.from_numpy(np.asarray(v.rows[:n], dtype=np.int64))
        return list(rows.split(dyn.eval_batch_size))

    # -- the loop ---------------------------------------------------------------------------

    def train(self, stop_at_step: int | None = None) -> None:
        cfg = self.cfg
        end = (
            cfg.training.max_steps
            if stop_at_step is None
            else min(stop_at_step, cfg.training.max_steps)
        )
        bar = self._progress_bar()
        window = _Window(self.tokens)
        while self.step < end:
            stats = self.train_step()
            self.step += 1
            window.add(stats, self.tokens)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(window.postfix(), refresh=False)
            if self.step % cfg.logging.every == 0 or self.step == end:
                self._log(window.flush(self.step, self._lr()))
            dyn_due = cfg.dynamics.enabled and self.step % cfg.dynamics.every == 0
            ckpt_due = self.step % cfg.checkpointing.every == 0 or self.step == end
            extra = self._dynamics(save_tensors=ckpt_due) if dyn_due else None
            if ckpt_due:
                self._save(extra)
        if bar is not None:
            bar.close()
        self.fabric.barrier()

    def train_step(self) -> Tensor:
        """One optimizer step over ``accum`` micro-batches; returns the rank-reduced stats."""
        fabric = self.fabric
        dtype = torch.float32 if fabric.device.type == "mps" else torch.float64
        stats = torch.zeros(len(_STATS), dtype=dtype, device=fabric.device)
        for i, is_meta in enumerate(self._draw_branches()):
            last = i == self.accum - 1
            with fabric.no_backward_sync(self.model, enabled=not last):
                loss = self._meta_micro_batch(stats) if is_meta else self._ar_micro_batch(stats)
                fabric.backward(loss / self.accum)
        if self.head is not None and self.world > 1:
            _average_grads(fabric, list(self.head.parameters()))
        # Mean over ranks: branch counts are equal on every rank; loss sums become the
        # global mean once divided by the count (shards are equal in size).
        stats = fabric.all_reduce(stats, reduce_op="mean").cpu()
        self._stop_if_nonfinite(stats)
        grad_norm = self._clip()
        self.optimizer.step()
        self.scheduler.step()
        # None, not zeros: a parameter without gradient in a step (the vocabulary
        # projection in an all-episode step, the head in an all-AR step) is skipped by
        # AdamW, no decay, no momentum; DDP leaves such gradients None on every rank too.
        self.optimizer.zero_grad(set_to_none=True)
        stats = torch.cat([stats, torch.tensor([grad_norm], dtype=torch.float64)])
        return stats

    def _draw_branches(self) -> list[bool]:
        """Branch per micro-batch (True = meta), drawn on rank 0 and broadcast."""
        if not self.meta_on:
            return [False] * self.accum
        draws: list[bool] | None = None
        if self.rank == 0:
            rho = self.cfg.meta.rho
            if self.cfg.meta.branch_draw == "per_step":
                draws = [bool(self.branch_rng.random() < rho)] * self.accum
            else:
                draws = [bool(u < rho) for u in self.branch_rng.random(self.accum)]
        if self.world > 1:
            draws = self.fabric.broadcast(draws, src=0)
        assert draws is not None
        return draws

    def _ar_micro_batch(self, stats: Tensor) -> Tensor:
        rows = self.data.loader.next_rows(self.cfg.training.micro_batch_size)
        rows = rows.to(self.fabric.device)
        loss = ar_loss(self.model, rows)
        # Kept on the device (no per-micro-batch sync); checked once per step.
        value = loss.detach().to(stats.dtype)
        stats[_IDX["n_ar"]] += 1
        stats[_IDX["ar_loss"]] += value
        stats[_IDX["bad_ar"]] += (~torch.isfinite(value)).to(stats.dtype)
        self.tokens += (rows.shape[1] - 1) * rows.shape[0] * self.world
        return loss

    def _meta_micro_batch(self, stats: Tensor) -> Tensor:
        assert self.sampler is not None and self.head is not None
        episode = self.sampler.sample(self.episode_rng)
        loss, metrics = episode_loss(
            self.model,
            self.head,
            episode,
            self.cfg.meta,
            rank=self.rank,
            world_size=self.world,
            all_gather=self.fabric.all_gather,
        )
        stats[_IDX["n_meta"]] += 1
        if math.isfinite(metrics["query_loss"]):
            stats[_IDX["meta_loss"]] += metrics["query_loss"]
        else:
            stats[_IDX["bad_meta"]] += 1
        for key in _EPISODE_KEYS:
            stats[_IDX[key]] += metrics[key]
        self.tokens += episode.n_tokens
        return loss

    def _stop_if_nonfinite(self, stats: Tensor) -> None:
        bad = [name for name in ("ar", "meta") if stats[_IDX[f"bad_{name}"]] > 0]
        if bad:
            self._raise_nonfinite(f"non-finite {' and '.join(bad)} loss")

    def _raise_nonfinite(self, what: str) -> None:
        latest = ckpt.latest_checkpoint(self.ckpt_root)
        kept = (
            f"the last good checkpoint is {latest}" if latest else "no checkpoint was written yet"
        )
        raise PicomamlError(
            f"{what} at optimizer step {self.step + 1}; stopped before updating the "
            f"parameters ({kept}). Lower training.lr, tighten training.grad_clip or check "
            "the data, then start again or --resume"
        )

    def _clip(self) -> float:
        """Global gradient norm before clipping (clipped to ``training.grad_clip``)."""
        clip = self.cfg.training.grad_clip
        if clip is not None:
            norm = self.fabric.clip_gradients(
                self.model, self.optimizer, max_norm=clip, error_if_nonfinite=False
            )
        else:
            grads = [p.grad for g in self.raw_optimizer.param_groups for p in g["params"]]
            grads = [g for g in grads if g is not None]
            norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(g) for g in grads])
            )
        value = float(norm)
        # 16-mixed's gradient scaler skips steps with inf gradients by design.
        scaled = getattr(self.fabric.strategy.precision, "precision", "") == "16-mixed"
        if not math.isfinite(value) and not scaled:
            self._raise_nonfinite("non-finite gradient norm")
        return value

    def _lr(self) -> float:
        return float(self.raw_optimizer.param_groups[0]["lr"])

    # -- logging, dynamics, checkpoints ----------------------------------------------------

    def _progress_bar(self):
        if self.rank != 0 or not self.cfg.logging.progress_bar:
            return None
        from tqdm.auto import tqdm

        return tqdm(
            total=self.cfg.training.max_steps,
            initial=self.step,
            desc="pretrain",
            unit="step",
            dynamic_ncols=True,
        )

    def _log(self, record: dict[str, Any]) -> None:
        if self.rank == 0:
            _append_jsonl(self.run_dir / METRICS_FILE, record)
        scalars = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
        if self.fabric.loggers:
            self.fabric.log_dict({f"train/{k}": v for k, v in scalars.items()}, step=self.step)

    def _dynamics(self, save_tensors: bool) -> dict[str, Any] | None:
        """Perplexity, spectra and PER (logged now); tensors returned for the checkpoint."""
        cfg = self.cfg.dynamics
        result = None
        if self.rank == 0:
            model = self.raw_model
            record: dict[str, Any] = {"step": self.step, "kind": "dynamics"}
            if self.valid_batches:
                record["val_perplexity"] = dynamics.perplexity(model, self.valid_batches)
            spec = dynamics.spectra(model, cfg.layers)
            record["per"] = {n: dynamics.proportional_effective_rank(s) for n, s in spec.items()}
            record["singular_values"] = {n: s.tolist() for n, s in spec.items()}
            _append_jsonl(self.run_dir / METRICS_FILE, record)
            if self.fabric.loggers and "val_perplexity" in record:
                self.fabric.log_dict({"val/perplexity": record["val_perplexity"]}, step=self.step)
            if cfg.save_tensors and save_tensors:
                result = {
                    "train": dynamics.extract_states(model, self.data.train_probe, cfg.layers)
                }
                if self.valid_batches:
                    result["val"] = dynamics.extract_states(
                        model, self.valid_batches[0], cfg.layers
                    )
        self.fabric.barrier()
        return result

    def _save(self, states: dict[str, Any] | None) -> None:
        if self.rank == 0:
            trainer_state = {
                "optimizer": self.raw_optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": ckpt.capture_rng(),
                "branch_rng": ckpt.generator_state(self.branch_rng),
                "episode_rng": ckpt.generator_state(self.episode_rng),
                "data": self.data.loader.state_dict(),
                "tokens": self.tokens,
                "world_size": self.world,
            }

            def write_dynamics(folder: Path) -> None:
                for split, split_states in (states or {}).items():
                    dynamics.save_states(folder / "learning_dynamics", split, split_states)

            ckpt.save_checkpoint(
                self.ckpt_root,
                self.step,
                self.raw_model,
                self.head,
                trainer_state,
                extra=write_dynamics,
                keep_last=self.cfg.checkpointing.keep_last,
                keep_state_last=self.cfg.checkpointing.keep_state_last,
            )
        self.fabric.barrier()


# --- small helpers -------------------------------------------------------------------------


class _Window:
    """Sums of the reduced per-step stats between two log lines."""

    def __init__(self, tokens: int) -> None:
        self.sums: Tensor | None = None
        self.steps = 0
        self.t0 = time.perf_counter()
        self.tokens0 = self.tokens = tokens
        self.total_ar = self.total_meta = 0
        self.last: dict[str, float] = {}

    def add(self, stats: Tensor, tokens: int) -> None:
        self.sums = stats.clone() if self.sums is None else self.sums + stats
        self.steps += 1
        self.tokens = tokens
        n_ar, n_meta = float(stats[_IDX["n_ar"]]), float(stats[_IDX["n_meta"]])
        self.total_ar += int(n_ar)
        self.total_meta += int(n_meta)
        if n_ar:
            self.last["ar"] = float(stats[_IDX["ar_loss"]]) / n_ar
        if n_meta:
            self.last["meta"] = float(stats[_IDX["meta_loss"]]) / n_meta
        self.last["tok_s"] = (tokens - self.tokens0) / max(time.perf_counter() - self.t0, 1e-9)

    def postfix(self) -> str:
        parts = [f"{self.last.get('tok_s', 0):,.0f} tok/s"]
        if "ar" in self.last:
            parts.append(f"ar {self.last['ar']:.3f}")
        if "meta" in self.last:
            parts.append(f"meta {self.last['meta']:.3f}")
        parts.append(f"AR/meta {self.total_ar}/{self.total_meta}")
        return ", ".join(parts)

    def flush(self, step: int, lr: float) -> dict[str, Any]:
        """The log record of the window (means over its micro-batches), then reset."""
        assert self.sums is not None
        s = self.sums
        n_ar, n_meta = float(s[_IDX["n_ar"]]), float(s[_IDX["n_meta"]])
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        record: dict[str, Any] = {
            "step": step,
            "kind": "train",
            "lr": lr,
            "ar_loss": float(s[_IDX["ar_loss"]]) / n_ar if n_ar else None,
            "meta_loss": float(s[_IDX["meta_loss"]]) / n_meta if n_meta else None,
            "ar_per_step": n_ar / self.steps,
            "meta_per_step": n_meta / self.steps,
            "grad_norm": float(s[-1]) / self.steps,
            "tokens": self.tokens,
            "tokens_per_s": (self.tokens - self.tokens0) / elapsed,
        }
        for key in _EPISODE_KEYS:
            record[key] = float(s[_IDX[key]]) / n_meta if n_meta else None
        self.sums, self.steps, self.t0, self.tokens0 = None, 0, time.perf_counter(), self.tokens
        return record


def _param_groups(model: nn.Module, head: nn.Module | None, cfg: PretrainConfig) -> list[dict]:
    """AdamW groups: weight decay on matrices and embeddings only; the head's lr optional."""
    t = cfg.training
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": t.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if head is not None:
        lr = cfg.meta.head_lr or t.lr
        groups.append(
            {
                "params": [p for p in head.parameters() if p.dim() >= 2],
                "weight_decay": t.weight_decay,
                "lr": lr,
            }
        )
        groups.append(
            {"params": [p for p in head.parameters() if p.dim() < 2], "weight_decay": 0.0, "lr": lr}
        )
    return groups


def _pico_config(cfg: PretrainConfig):  # -> PicoConfig
    """The backbone shape; ``max_seq_len`` defaults to cover both LM rows and episode windows."""
    try:
        return cfg.model.pico_config(max(cfg.data.seq_len, cfg.meta.window))
    except PicomamlError as exc:
        raise PicomamlError(f"model: {exc}") from exc


def _average_grads(fabric: Any, params: list[nn.Parameter]) -> None:
    """Average ``.grad`` over ranks (the head is not inside DDP); one collective."""
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in with_grad])
    flat = fabric.all_reduce(flat, reduce_op="mean")
    offset = 0
    for p in with_grad:
        n = p.grad.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


def _is_fsdp(fabric: Any) -> bool:
    from lightning.fabric.strategies import FSDPStrategy

    return isinstance(fabric.strategy, FSDPStrategy)


def _check_same_run(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Resuming with a different model/data/training/meta config is an error naming keys."""
    diffs = []
    for section in _RESUME_KEYS:
        a, b = saved.get(section, {}), current.get(section, {})
        for key in sorted(set(a) | set(b)):
            if (section, key) in _RESUME_IGNORED:
                continue
            va, vb = a.get(key), b.get(key)
            if isinstance(va, tuple):
                va = list(va)
            if isinstance(vb, tuple):
                vb = list(vb)
            if va != vb:
                diffs.append(f"{section}.{key}: {va!r} in the run, {vb!r} now")
    if diffs:
        raise PicomamlError(
            f"cannot resume: the config differs from {path} ({'; '.join(diffs)}); "
            "resume with the same settings or start a new --run-dir"
        )


def _iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("r", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep only records up to ``step`` (a resumed run rewrites what came after)."""
    if not path.is_file():
        return
    kept = [r for r in _iter_jsonl(path) if int(r.get("step", 0)) <= step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    tmp.replace(path)


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


__all__ = ["build_fabric", "ddp_strategy", "run_pretraining"]

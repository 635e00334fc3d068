"""Hybrid pretraining loop on Lightning Fabric: autoregressive steps and first-order MAML
episodes, mixed per micro-batch (the paper's Algorithm 1).

One optimizer step, read top to bottom (:meth:`Trainer.train_step`):

1. the branch of each of the step's micro-batches is drawn, Bernoulli(``rho``) from a
   generator seeded identically on every rank (or one draw for the whole step);
2. each micro-batch computes its loss: ``ar_loss`` on this rank's shard of the global
   micro-batch of rows (``micro_batch_size`` x world size rows), or ``episode_loss``
   on an SMLMT episode that every rank draws identically from a shared seed, each rank
   encoding its shard of the windows (support features are all-gathered); the next
   micro-batch's inputs are prepared and copied while this one computes;
3. ``fabric.backward(loss / accumulation_steps)`` under ``no_backward_sync`` except on
   the last micro-batch, so DDP averages the accumulated gradients once;
4. the meta head (outside DDP) has its gradients averaged over ranks by hand;
5. gradients are clipped (global L2 norm of backbone and head together); on a read-back
   step (logging, checkpoint, dynamics or last step) the statistics are read back and a
   non-finite loss or gradient norm stops the run; AdamW step, scheduler step,
   ``zero_grad``;
6. logging (``metrics.jsonl``, progress bar, optional Fabric loggers), learning
   dynamics and checkpoints at their cadences.

No host-device sync happens per micro-batch or per step: losses, counts and norms stay
on the device and are read back once per read-back step (docs/pretraining-run.md lists
the syncs that remain).

With the same global batch, the gradients equal those of a single-process run, so the
parameters agree across world sizes (``tests/pretrain/test_distributed.py``), and stopping and
resuming gives bit-identical parameters (``tests/pretrain/test_trainer.py``).

SMLMT episodes are drawn from a pool made of the first ``meta.pool_tokens`` tokens
(whole packed rows, in file order) of the training corpus, the same rows on every rank.

Around the loop: :mod:`.launch` (Fabric, strategy, collectives), :mod:`.inputs` (rows, pool,
held-out batches, device copies), :mod:`.optim` (AdamW groups and kernel), :mod:`.rundir`
(fresh start or resume), :mod:`.stats` (statistics and the logging window) and
:mod:`.checkpoint`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric import Fabric
from torch import Tensor
from tqdm.auto import tqdm

from picomaml import layout
from picomaml.data.tokenizer import MASK_ID
from picomaml.errors import PicomamlError
from picomaml.fileio import append_jsonl, write_json
from picomaml.model import PicoDecoder
from picomaml.model.compile import maybe_compile
from picomaml.model.loss import ar_loss
from picomaml.pretrain import checkpoint as ckpt
from picomaml.pretrain import dynamics
from picomaml.pretrain.config import PretrainConfig, pico_config
from picomaml.pretrain.inputs import (
    build_sampler,
    corpus_passes,
    load_training_data,
    to_device,
    valid_batches,
)
from picomaml.pretrain.launch import (
    AutocastBackbone,
    all_reduce_mean,
    all_reduce_min,
    average_grads,
    build_fabric,
    ddp_strategy,
    gather_equal,
    is_fsdp,
)
from picomaml.pretrain.maml import EpisodeInputs, episode_inputs, episode_loss
from picomaml.pretrain.meta_head import MetaHead
from picomaml.pretrain.optim import build_optimizer, load_optimizer_state
from picomaml.pretrain.rundir import checkpoint_root, resume_point, run_dir_lock, write_run_start
from picomaml.pretrain.schedule import build_scheduler
from picomaml.pretrain.smlmt import Episode, decode_vocab
from picomaml.pretrain.stats import EPISODE_KEYS, StatsAccumulator, StepStats, Window
from picomaml.seeding import seed_everything


def run_pretraining(
    cfg: PretrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    data_root: Path | None = None,
    fabric: Fabric | None = None,
    stop_at_step: int | None = None,
    init_from: Path | None = None,
) -> Path:
    """Pretrain as ``cfg`` says, writing ``run_dir`` (see docs/pretraining-run.md).

    ``fabric``: an already launched Fabric (tests, or callers with their own launch);
    by default one is built from ``cfg.runtime`` and launched here. ``resume`` continues
    from ``checkpoints/latest`` (or starts fresh when there is none). ``stop_at_step``
    ends the run early after that step's checkpoint, with the schedule still that of
    ``training.max_steps`` (for time-limited jobs; resume later). ``data_root``: the
    resolved data root, or ``None`` for none (see :func:`.inputs.load_training_data`).
    ``init_from``: a checkpoint of *another* run (with its trainer state) to branch from:
    weights, head, optimizer, schedule position, data position and generators continue
    from it under this config (e.g. the diagnostic continuations of docs/pretraining.md,
    which change ``meta.rho``); recorded in ``RUN_DIR/init_from.json``. Returns ``run_dir``.
    """
    run_dir = Path(run_dir)
    if fabric is None:
        fabric = build_fabric(cfg, run_dir)
        fabric.launch()
    with run_dir_lock(fabric, run_dir):  # one run per run dir (picomaml.locks)
        trainer = Trainer(
            fabric, cfg, run_dir, data_root=data_root, resume=resume, init_from=init_from
        )
        trainer.train(stop_at_step)
    return run_dir


@dataclass
class _MicroBatch:
    """A micro-batch's inputs, already copied (or being copied) to the device."""

    is_meta: bool
    rows: Tensor | None = None
    episode: Episode | None = None
    inputs: EpisodeInputs | None = None


class Trainer:
    """State of one pretraining run on one rank; :meth:`train` is the loop."""

    def __init__(
        self,
        fabric: Fabric,
        cfg: PretrainConfig,
        run_dir: Path,
        *,
        data_root: Path | None,
        resume: bool,
        init_from: Path | None = None,
    ) -> None:
        """Set up in the order the steps read: the run's record, then data, meta sampler,
        model, optimiser and logging (each a method below). Data and sampler come before
        the seed, so the model, head and optimizer are identical on every rank."""
        self.fabric, self.cfg, self.run_dir = fabric, cfg, run_dir
        self.rank, self.world = fabric.global_rank, fabric.world_size
        self.accum = cfg.training.accumulation_steps(self.world)
        self.ckpt_root = checkpoint_root(cfg, run_dir)
        self.meta_on = cfg.meta.enabled and cfg.meta.rho > 0
        self.step, self.tokens = 0, 0
        self.branch_rng = np.random.default_rng([cfg.training.seed, 0xB7A2C4])
        self.episode_rng = np.random.default_rng([cfg.training.seed, 0xE915])
        self._check_world()
        resume_from = self._start_run(resume, init_from)
        self._setup_data(data_root)
        self._setup_meta()
        state = self._setup_model(resume_from)
        self._setup_optimiser(state)
        self._setup_logging()

    # -- setup steps ------------------------------------------------------------------------

    def _start_run(self, resume: bool, init_from: Path | None) -> Path | None:
        """Record the run's start (rank 0) and say which checkpoint the weights come from:
        the resume point, else ``init_from``, else none."""
        resume_from = resume_point(self.cfg, self.run_dir, resume)
        if self.rank == 0:
            write_run_start(self.cfg, self.run_dir, resume_from)
            if resume_from is None and init_from is not None:
                write_json(self.run_dir / layout.INIT_FROM, {"init_from": str(init_from)})
        if resume_from is None and init_from is not None:
            resume_from = Path(init_from)
        self.fabric.barrier()
        return resume_from

    def _setup_data(self, data_root: Path | None) -> None:
        """This rank's training rows (and a note when the run repeats its corpus)."""
        cfg = self.cfg
        self.data = load_training_data(cfg, data_root, self.rank, self.world)
        local = self.data.local_rows()
        passes = corpus_passes(cfg, local.n_rows) if local is not None else 0.0
        if self.rank == 0 and passes > 1:
            print(
                f"pretrain: note: the run reads up to {passes:.1f} passes over its corpus "
                f"({local.n_rows:,} rows of {cfg.data.seq_len + 1} tokens); rows repeat",
                file=sys.stderr,
                flush=True,
            )

    def _setup_meta(self) -> None:
        """The SMLMT episode sampler over the token pool (``None`` without meta steps)."""
        self.sampler = None
        if self.meta_on:
            assert self.data.pool is not None
            vocab = decode_vocab(self.data.tokenizer)
            self.sampler = build_sampler(self.cfg.meta, self.data.pool, vocab, MASK_ID)

    def _setup_model(self, resume_from: Path | None) -> dict[str, Any] | None:
        """Seeded decoder and meta head (weights from ``resume_from``), compiled blocks,
        wrapped by Fabric; returns the checkpoint's training state (``None``: fresh)."""
        cfg, fabric = self.cfg, self.fabric
        seed_everything(cfg.training.seed)
        pico = pico_config(cfg)
        model = PicoDecoder(pico)
        head = MetaHead.from_config(pico.d_model, cfg.meta) if cfg.meta.enabled else None
        state = None
        if resume_from is not None:
            loaded, head_state, state = ckpt.load_checkpoint(resume_from)
            model.load_state_dict(loaded.state_dict())
            if head is not None:
                if head_state is None:
                    raise PicomamlError(f"{resume_from}: no {ckpt.HEAD_FILE} for the meta head")
                head.load_state_dict(head_state)
        # Blocks compiled in place: parameter names (and so checkpoints) stay plain.
        self.compiled = maybe_compile(model, cfg.runtime.compile, fabric.device)
        if self.compiled and self.rank == 0:
            print(
                "pretrain: note: the decoder blocks are compiled (runtime.compile); the first "
                "steps of each input shape include the compile time",
                file=sys.stderr,
                flush=True,
            )
        self.raw_model, self.head = model, head
        self.model = fabric.setup_module(model)
        self.model.mark_forward_method("hidden_states")
        self.backbone = AutocastBackbone(fabric, self.model)
        self.gather = gather_equal(fabric)
        if head is not None:
            head.to(fabric.device)
        return state

    def _setup_optimiser(self, state: dict[str, Any] | None) -> None:
        """AdamW over the decoder and head, its schedule, and on resume their state and the
        loop's position (step, tokens, generators, data order)."""
        optimizer = build_optimizer(self.raw_model, self.head, self.cfg)
        self.scheduler = build_scheduler(optimizer, self.cfg.training)
        if state is not None:
            load_optimizer_state(optimizer, state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self._restore(state)
        self.raw_optimizer = optimizer
        self.optimizer = self.fabric.setup_optimizers(optimizer)

    def _setup_logging(self) -> None:
        """Held-out batches for the dynamics log, the statistics accumulator, and the slot
        for the micro-batch prepared ahead."""
        self.valid_batches = valid_batches(self.data.valid, self.cfg.dynamics)
        self.acc = StatsAccumulator(self.fabric.device)
        # One micro-batch prepared ahead (and the branch draws of its step when it opens
        # the next step); never across a checkpoint, so saved positions stay exact.
        self._ahead: _MicroBatch | None = None
        self._ahead_draws: list[bool] | None = None

    def _check_world(self) -> None:
        """Fail before any work on a strategy or a world size the run cannot use."""
        if is_fsdp(self.fabric):
            raise PicomamlError(
                "runtime.strategy=fsdp: Fabric can launch it, but this trainer's checkpoints "
                "(a full Pico folder plus optimizer state) are not implemented for sharded "
                "parameters; use ddp (every Pico tier fits on one GPU)"
            )
        m = self.cfg.meta
        if self.meta_on and (m.ways * m.shots % self.world or m.ways * m.queries % self.world):
            raise PicomamlError(
                f"meta.ways x shots = {m.ways * m.shots} and ways x queries = "
                f"{m.ways * m.queries} windows must divide evenly over {self.world} ranks"
            )

    def _restore(self, state: dict[str, Any]) -> None:
        self.step, self.tokens = int(state["step"]), int(state["tokens"])
        ckpt.restore_rng(state["rng"])
        ckpt.set_generator_state(self.branch_rng, state["branch_rng"])
        ckpt.set_generator_state(self.episode_rng, state["episode_rng"])
        self.data.loader.load_state_dict(state["data"])

    # -- the loop ---------------------------------------------------------------------------

    def train(self, stop_at_step: int | None = None) -> None:
        """Run optimizer steps up to ``training.max_steps`` (or ``stop_at_step``), logging,
        recording dynamics and checkpointing at their cadences."""
        cfg = self.cfg
        end = (
            cfg.training.max_steps
            if stop_at_step is None
            else min(stop_at_step, cfg.training.max_steps)
        )
        bar = self._progress_bar()
        window = Window(self.tokens)
        self.acc.reset()
        while self.step < end:
            step = self.step + 1
            log_due = step % cfg.logging.every == 0 or step == end
            dyn_due = cfg.dynamics.enabled and step % cfg.dynamics.every == 0
            ckpt_due = step % cfg.checkpointing.every == 0 or step == end
            stats = self.train_step(read=log_due or dyn_due or ckpt_due, ahead=not ckpt_due)
            self.step = step
            if stats is not None:
                window.add(stats, self.acc.steps, self.tokens)
                self.acc.reset()
            if bar is not None:
                bar.update(1)
                if stats is not None:
                    bar.set_postfix_str(window.postfix(), refresh=False)
            if log_due:
                self._log({**window.flush(self.step, self._lr()), **self._mask_norm()})
            extra = self._dynamics(save_tensors=ckpt_due) if dyn_due else None
            if ckpt_due:
                self._save(extra)
        if bar is not None:
            bar.close()
        self.fabric.barrier()

    def train_step(self, read: bool = True, ahead: bool = False) -> StepStats | None:
        """One optimizer step over ``accum`` micro-batches.

        ``read``: read the statistics back (the host waits for the device), stop on a
        non-finite value before this step's update, and return the rank-averaged sums
        since the last read-back; otherwise they stay on the device and None is
        returned. ``ahead``: prepare the next step's first micro-batch during this
        step's last one (never before a checkpoint, whose data position and generator
        states must be those after this step).
        """
        fabric, acc = self.fabric, self.acc
        logged = (self.step + 1) % self.cfg.logging.every == 0
        draws = self._ahead_draws if self._ahead_draws is not None else self._draw_branches()
        self._ahead_draws = None
        for i, is_meta in enumerate(draws):
            last = i == self.accum - 1
            batch = self._ahead if self._ahead is not None else self._prepare(is_meta)
            self._ahead = None
            # Under DDP the last micro-batch's backward also averages over ranks, so its
            # gradient is not that micro-batch's own: it is not measured.
            before = self._grads() if logged and (self.world == 1 or not last) else None
            with fabric.no_backward_sync(self.model, enabled=not last):
                loss = self._meta_loss(batch, acc) if is_meta else self._ar_loss(batch, acc)
                # The next inputs are made and copied while this micro-batch computes.
                if not last:
                    self._ahead = self._prepare(draws[i + 1])
                elif ahead:
                    self._ahead_draws = self._draw_branches()
                    self._ahead = self._prepare(self._ahead_draws[0])
                fabric.backward(loss / self.accum)
            if before is not None:
                branch = "meta" if is_meta else "ar"
                acc.add(f"{branch}_grad_norm", self._grad_norm_since(before) * self.accum)
                acc.add(f"n_{branch}_grad", 1)
        if self.head is not None and self.world > 1:
            average_grads(fabric, list(self.head.parameters()))
        norm = self._clip()
        acc.add("grad_norm", norm)
        # 16-mixed's gradient scaler skips steps with inf gradients by design.
        if getattr(fabric.strategy.precision, "precision", "") != "16-mixed":
            acc.add("bad_grad", (~torch.isfinite(norm)).to(acc.values.dtype))
        acc.end_step(self.step + 1)
        stats = None
        if read:
            # Mean over ranks: branch counts are equal on every rank; loss sums become the
            # global mean once divided by the count (shards are equal in size).
            stats = acc.read(lambda t: all_reduce_mean(fabric, t))
            self._stop_if_nonfinite(stats)
        self.optimizer.step()
        self.scheduler.step()
        # None, not zeros: a parameter without gradient in a step (the vocabulary
        # projection in an all-episode step, the head in an all-AR step) is skipped by
        # AdamW, no decay, no momentum; DDP leaves such gradients None on every rank too.
        self.optimizer.zero_grad(set_to_none=True)
        return stats

    def _draw_branches(self) -> list[bool]:
        """Branch per micro-batch (True = meta).

        Every rank draws from an identically seeded (and identically restored) generator,
        so the draws agree without a broadcast (which would sync host and device).
        """
        if not self.meta_on:
            return [False] * self.accum
        rho = self.cfg.meta.rho
        if self.cfg.meta.branch_draw == "per_step":
            return [bool(self.branch_rng.random() < rho)] * self.accum
        return [bool(u < rho) for u in self.branch_rng.random(self.accum)]

    def _prepare(self, is_meta: bool) -> _MicroBatch:
        """Read the next rows or draw the next episode, and start copying it to the device."""
        device = self.fabric.device
        if not is_meta:
            rows = self.data.loader.next_rows(self.cfg.training.micro_batch_size)
            return _MicroBatch(False, rows=to_device(rows, device))
        assert self.sampler is not None
        episode = self.sampler.sample(self.episode_rng)
        inputs = episode_inputs(episode, device, rank=self.rank, world_size=self.world)
        return _MicroBatch(True, episode=episode, inputs=inputs)

    def _ar_loss(self, batch: _MicroBatch, acc: StatsAccumulator) -> Tensor:
        rows = batch.rows
        assert rows is not None
        loss = ar_loss(self.model, rows)
        # Kept on the device (no per-micro-batch sync); checked at the next read-back.
        value = loss.detach().to(acc.values.dtype)
        acc.add("n_ar", 1)
        acc.add("ar_loss", value)
        acc.add("bad_ar", (~torch.isfinite(value)).to(acc.values.dtype))
        self.tokens += (rows.shape[1] - 1) * rows.shape[0] * self.world
        return loss

    def _meta_loss(self, batch: _MicroBatch, acc: StatsAccumulator) -> Tensor:
        assert self.head is not None and batch.inputs is not None and batch.episode is not None
        loss, metrics = episode_loss(
            self.backbone,  # type: ignore[arg-type]  (has hidden_states, under autocast)
            self.head,
            batch.inputs,
            self.cfg.meta,
            rank=self.rank,
            world_size=self.world,
            all_gather=self.gather,
        )
        # Kept on the device like the AR loss; non-finite values are counted, not summed.
        value = metrics["query_loss"].to(acc.values.dtype)
        finite = torch.isfinite(value)
        acc.add("n_meta", 1)
        acc.add("meta_loss", torch.where(finite, value, torch.zeros_like(value)))
        acc.add("bad_meta", (~finite).to(acc.values.dtype))
        for key in EPISODE_KEYS:
            acc.add(key, metrics[key].to(acc.values.dtype))
        self.tokens += batch.episode.n_tokens
        return loss * self.cfg.meta.loss_weight

    def _grads(self) -> list[Tensor | None]:
        """Copies of the current gradients (None where there is none yet)."""
        params = [p for g in self.raw_optimizer.param_groups for p in g["params"]]
        return [None if p.grad is None else p.grad.detach().clone() for p in params]

    def _grad_norm_since(self, before: list[Tensor | None]) -> Tensor:
        """L2 norm of what the gradients gained since ``before`` (one micro-batch's share)."""
        params = [p for g in self.raw_optimizer.param_groups for p in g["params"]]
        total = torch.zeros((), dtype=torch.float64, device=self.fabric.device)
        for p, old in zip(params, before, strict=True):
            if p.grad is not None:
                delta = p.grad.detach() if old is None else p.grad.detach() - old
                total += delta.double().square().sum()
        return total.sqrt()

    def _stop_if_nonfinite(self, stats: StepStats) -> None:
        """Raise when a read-back counted a non-finite loss or gradient norm.

        The check runs at read-back steps only; an earlier step of the period may have
        updated the parameters with non-finite values already, which the message says.
        Nothing is saved in between (checkpoints are read-back steps).
        """
        losses = {"bad_ar": "ar loss", "bad_meta": "meta loss"}
        bad = [what for key, what in losses.items() if getattr(stats, key) > 0]
        if not bad and stats.bad_grad > 0:  # a non-finite loss makes the norm so too
            bad = ["gradient norm"]
        if not bad:
            return
        now = self.step + 1
        first = self.acc.first_bad_step(lambda t: all_reduce_min(self.fabric, t)) or now
        latest = ckpt.latest_checkpoint(self.ckpt_root)
        kept = (
            f"the last good checkpoint is {latest}" if latest else "no checkpoint was written yet"
        )
        if first == now:
            when = f"at optimizer step {now}; stopped before updating the parameters"
        else:
            steps = f"step {first}" if first == now - 1 else f"steps {first} to {now - 1}"
            what = "it" if first == now - 1 else "them"
            when = (
                f"at optimizer step {first} (read back at step {now}: statistics are read "
                f"once per logging step); {steps} updated the parameters in memory, nothing "
                f"of {what} was saved; stopped before step {now}'s update"
            )
        raise PicomamlError(
            f"non-finite {' and '.join(bad)} {when} ({kept}). Lower training.lr, tighten "
            "training.grad_clip or check the data, then start again or --resume"
        )

    def _clip(self) -> Tensor:
        """Global gradient norm before clipping (clipped to ``training.grad_clip``), on the
        device: no sync (``error_if_nonfinite=False``; the check is at read-back)."""
        clip = self.cfg.training.grad_clip
        if clip is not None:
            norm = self.fabric.clip_gradients(
                self.model, self.optimizer, max_norm=clip, error_if_nonfinite=False
            )
            assert norm is not None
            return norm
        grads = [p.grad for g in self.raw_optimizer.param_groups for p in g["params"]]
        grads = [g for g in grads if g is not None]
        return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))

    def _lr(self) -> float:
        return float(self.raw_optimizer.param_groups[0]["lr"])

    # -- logging, dynamics, checkpoints ----------------------------------------------------

    def _progress_bar(self) -> tqdm | None:
        if self.rank != 0 or not self.cfg.logging.progress_bar:
            return None
        return tqdm(
            total=self.cfg.training.max_steps,
            initial=self.step,
            desc="pretrain",
            unit="step",
            dynamic_ncols=True,
        )

    def _mask_norm(self) -> dict[str, float]:
        """L2 norm of the ``[MASK]`` embedding row (a read-back: logging steps only).

        Why logged: only episodes train that row, so its norm shows how much of what the
        meta branch learns sits in one input vector rather than in the context.
        """
        emb = self.raw_model.embedding_proj.weight
        if emb.shape[0] <= MASK_ID:
            return {}
        return {"mask_embedding_norm": float(emb[MASK_ID].detach().float().norm())}

    def _log(self, record: dict[str, Any]) -> None:
        if self.rank == 0:
            append_jsonl(self.run_dir / layout.METRICS, record)
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
            append_jsonl(self.run_dir / layout.METRICS, record)
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
                    dynamics.save_states(folder / layout.DYNAMICS_DIR, split, split_states)

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


__all__ = ["Trainer", "build_fabric", "ddp_strategy", "run_pretraining"]

"""Lightning Fabric for the pretraining loop: strategy, precision, loggers, collectives.

Lightning is imported at the top (the pretraining stack needs it anyway); the optional
loggers (TensorBoard, W&B) are imported only when a config enables them, because they are
optional installs.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from lightning.fabric import Fabric
from lightning.fabric.strategies import DDPStrategy, FSDPStrategy
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from picomaml.errors import PicomamlError
from picomaml.pretrain.config import PretrainConfig


def build_fabric(cfg: PretrainConfig, run_dir: str | Path | None = None) -> Fabric:
    """Fabric from ``cfg.runtime`` and ``cfg.training.precision`` (not yet launched).

    ``ddp`` (and ``auto`` with more than one device or node) becomes
    :func:`ddp_strategy` (``find_unused_parameters=True`` when episodes run, because a
    MAML micro-batch never touches the vocabulary projection); ``devices: auto`` or
    ``-1`` counts as possibly several. Every other strategy name is passed to Fabric
    unchanged, so ``torchrun`` and SLURM launches work as Fabric documents.
    """
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


def ddp_strategy(find_unused_parameters: bool = True, **kwargs: Any) -> DDPStrategy:
    """DDP as the hybrid loop needs it: unused parameters allowed when episodes run
    (they skip the vocabulary projection) and no per-forward buffer sync (the RoPE
    tables are constants). ``kwargs`` go to ``DDPStrategy`` (``start_method="spawn"``)."""
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
        from lightning.fabric.loggers import TensorBoardLogger  # optional install

        out.append(TensorBoardLogger(root_dir=str(root / "tensorboard"), name="", version=""))
    if cfg.logging.wandb:
        if not importlib.util.find_spec("wandb"):
            raise PicomamlError(
                "logging.wandb is true but 'wandb' is not installed (pip install wandb), "
                "or set logging.wandb=false"
            )
        from lightning.pytorch.loggers import WandbLogger  # optional install (wandb)

        out.append(WandbLogger(project=cfg.logging.wandb_project, save_dir=str(root)))
    return out


def is_fsdp(fabric: Fabric) -> bool:
    """Whether ``fabric`` shards parameters (which this trainer's checkpoints do not support)."""
    return isinstance(fabric.strategy, FSDPStrategy)


def all_reduce_mean(fabric: Fabric, tensor: Tensor) -> Tensor:
    """Mean of ``tensor`` over ranks, in place; the identity on one process.

    Why not ``fabric.all_reduce``: it puts a barrier before every reduction, and an NCCL
    barrier blocks the host until the device has caught up (a sync per call). A sum
    followed by a division is what Fabric itself does on gloo, so CPU runs are unchanged.
    """
    if fabric.world_size > 1:
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        tensor.div_(fabric.world_size)
    return tensor


def all_reduce_min(fabric: Fabric, tensor: Tensor) -> Tensor:
    """Minimum of ``tensor`` over ranks, in place (see :func:`all_reduce_mean`)."""
    if fabric.world_size > 1:
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MIN)
    return tensor


class _GatherWithGrad(torch.autograd.Function):
    """All-gather of equal shards whose backward sums the gradient over ranks and keeps
    this rank's slice, so a loss on every rank that reads every rank's shard (the
    prototypes of a support-gradient learner) sends each shard all of its gradient."""

    @staticmethod
    def forward(ctx, local: Tensor, world: int) -> Tensor:
        ctx.rows = local.shape[0]
        out = local.new_empty((world * local.shape[0], *local.shape[1:]))
        torch.distributed.all_gather_single(out, local.contiguous())
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        grad = grad.contiguous()
        torch.distributed.all_reduce(grad, op=torch.distributed.ReduceOp.SUM)
        rank = torch.distributed.get_rank()
        return grad[rank * ctx.rows : (rank + 1) * ctx.rows], None


def gather_equal(fabric: Fabric) -> Callable[[Tensor], Tensor] | None:
    """``all_gather`` for tensors of the same shape on every rank (``[world * n, ...]``),
    differentiable (see :class:`_GatherWithGrad`).

    Why not ``fabric.all_gather``: it supports uneven shapes by gathering the shapes
    first and comparing them in Python, after a barrier, which syncs the host with the
    device on every call; episode shards always have equal shapes. ``None`` on one
    process (nothing to gather).
    """
    if fabric.world_size == 1:
        return None
    world = fabric.world_size

    def gather(local: Tensor) -> Tensor:
        return _GatherWithGrad.apply(local, world)

    return gather


def average_grads(fabric: Fabric, params: list[nn.Parameter]) -> None:
    """Average ``.grad`` over ranks (the head is not inside DDP); one collective."""
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in with_grad])
    flat = all_reduce_mean(fabric, flat)
    offset = 0
    for p in with_grad:
        n = p.grad.numel()
        p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
        offset += n


class AutocastBackbone:
    """The backbone's ``hidden_states`` under the run's precision, on any strategy.

    Why: Fabric routes a marked method through the strategy's forward (and so through
    the precision's autocast) only when the module is wrapped (DDP); on a single device
    ``model.hidden_states`` would run outside autocast, so under ``bf16-mixed`` the
    episodes would run in float32 while the AR branch runs in bf16. The output is
    converted as Fabric converts a forward's output, so both routes give the same.
    """

    def __init__(self, fabric: Fabric, model: nn.Module) -> None:
        self.fabric, self.model = fabric, model

    def hidden_states(self, ids: Tensor) -> Tensor:
        with self.fabric.autocast():
            out = self.model.hidden_states(ids)
        return self.fabric.strategy.precision.convert_output(out)

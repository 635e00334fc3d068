"""The pretraining optimizer: AdamW parameter groups, the kernel choice, and restoring its
state on another device type without changing that choice."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from picomaml.pretrain.config import PretrainConfig


def param_groups(model: nn.Module, head: nn.Module | None, cfg: PretrainConfig) -> list[dict]:
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


def build_optimizer(
    model: nn.Module, head: nn.Module | None, cfg: PretrainConfig
) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`; the fused kernel when every parameter is on CUDA.

    Why fused: one kernel for the whole update instead of a few per parameter group, and
    its step counters live on the device. It is CUDA only here: on CPU it would change
    the CPU presets' numbers for no measured gain.
    """
    groups = param_groups(model, head, cfg)
    params = [p for g in groups for p in g["params"]]
    fused = bool(params) and all(p.device.type == "cuda" for p in params)
    return torch.optim.AdamW(
        groups,
        lr=cfg.training.lr,
        betas=tuple(cfg.training.betas),
        eps=cfg.training.eps,
        fused=True if fused else None,
    )


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``optimizer.load_state_dict(state)``, keeping this optimizer's kernel choice.

    Why: a state dict carries its groups' ``fused``/``foreach`` flags, so a GPU run's
    checkpoint would make a CPU resume ask for the fused CUDA kernel (and a CPU
    checkpoint would turn the fused kernel off on GPU). The step counters are moved to
    where the kernel keeps them (the parameter's device when fused, else the CPU).
    """
    kernel = [{k: g.get(k) for k in ("fused", "foreach")} for g in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, flags in zip(optimizer.param_groups, kernel, strict=True):
        group.update(flags)
        for p in group["params"]:
            step = optimizer.state.get(p, {}).get("step")
            if isinstance(step, Tensor):
                device = p.device if flags["fused"] else torch.device("cpu")
                optimizer.state[p]["step"] = step.to(device=device, dtype=torch.float32)

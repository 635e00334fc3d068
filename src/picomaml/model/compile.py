"""``torch.compile`` for the Pico decoder (the ``runtime.compile`` setting).

What is compiled: each transformer block, in place (``nn.Module.compile``), not the
whole model. Why:

* parameter and buffer names do not change (no ``_orig_mod.`` prefix), so checkpoints,
  Fabric's wrappers and ``load_state_dict`` see the plain model;
* both entry points benefit: ``forward`` (the AR branch, with the chunked loss) and
  ``hidden_states`` (the MAML episodes and NER features), whereas ``torch.compile(model)``
  only compiles ``forward``;
* the blocks share one code object, so compile time is that of about one block;
* the chunked vocabulary loss stays eager (:mod:`picomaml.model.loss`).

Shapes are compiled static (``dynamic=False``): a run sees a handful of input shapes
(AR micro-batch, MAML support and query windows, evaluation batches), each compiled
once, and static kernels are the faster ones on GPU.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from picomaml.errors import PicomamlError

CompileSetting = bool | Literal["auto"]


def resolve_compile(setting: CompileSetting, device: torch.device | str) -> bool:
    """Whether to compile on ``device``: ``auto`` means on CUDA only.

    CPU stays eager under ``auto``: on the 2-core CPU we measured, compiled blocks were
    not clearly faster at the tiny tier (the CPU presets' tier), only at small, and
    compiling costs about a minute per run there (docs/pretraining.md, Throughput and
    memory).
    """
    if setting == "auto":
        return torch.device(device).type == "cuda"
    if not isinstance(setting, bool):
        raise PicomamlError(f"runtime.compile: expected true, false or auto, got {setting!r}")
    return setting


def compile_blocks(
    model: nn.Module, *, mode: str | None = None, backend: str = "inductor"
) -> nn.Module:
    """Compile every block of ``model.layers`` in place and return ``model``.

    ``mode`` and ``backend`` are passed to ``torch.compile`` (``backend="eager"`` traces
    without generating code: a quick check that tracing works). Calling it twice is
    harmless (the blocks are recompiled lazily).
    """
    layers = getattr(model, "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise PicomamlError(
            f"compile_blocks: {type(model).__name__} has no transformer blocks in .layers"
        )
    for block in layers:
        block.compile(dynamic=False, mode=mode, backend=backend)
    return model


def maybe_compile(model: nn.Module, setting: CompileSetting, device: torch.device | str) -> bool:
    """Apply :func:`compile_blocks` when :func:`resolve_compile` says so; True if it did."""
    enabled = resolve_compile(setting, device)
    if enabled:
        compile_blocks(model)
    return enabled


__all__ = ["CompileSetting", "compile_blocks", "maybe_compile", "resolve_compile"]

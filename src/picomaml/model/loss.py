"""Linear projection + cross-entropy, computed over row chunks.

Why: at the tiny and small tiers the vocabulary projection dominates a training step,
and the plain ``cross_entropy(linear(h, W).float(), t)`` holds the whole ``[N, V]``
logits (N = batch x tokens, V = 50,304) several times over: the logits, their float32
copy, the saved log-softmax and its gradient. One paper micro-batch of 32 x 2,048
tokens is about 13 GB of float32 logits per copy.

:func:`linear_cross_entropy` never holds more than one chunk of ``chunk_rows x V``
logits. The gradients with respect to the hidden states, the weight and the bias are
computed in the same pass as the loss (``softmax - one_hot`` per chunk), so backward
only scales them by the incoming gradient: no logits are recomputed.

:func:`ar_loss` is the pretraining objective's AR branch on top of it: next-token
cross-entropy of packed rows through the model's chunked loss (shared by the trainer and the
benchmarks).

Precision: the matmuls run in the *compute dtype* (the autocast dtype when autocast is
on, else the inputs' dtype), the log-sum-exp and the softmax always in float32, and the
weight and bias gradients are accumulated in float32 across chunks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

IGNORE_INDEX = -100

# Rows per chunk: enough rows for an efficient matmul, few enough that one chunk's
# float32 logits (rows x V x 4 bytes, ~50 MB at V = 50,304) stay small next to the
# activations of a micro-batch. On CPU, 128 to 1,024 rows ran within noise of each other.
DEFAULT_CHUNK_ROWS = 256


def _compute_dtype(hidden: Tensor, weight: Tensor) -> torch.dtype:
    device_type = hidden.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return torch.promote_types(hidden.dtype, weight.dtype)


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Loss and gradients in one pass over row chunks; backward only rescales."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        targets: Tensor,
        ignore_index: int,
        reduction: str,
        chunk_rows: int,
        dtype: torch.dtype,
    ) -> Tensor:
        need_h, need_w, need_b = ctx.needs_input_grad[:3]  # type: ignore[attr-defined]
        n_rows = hidden.shape[0]
        valid = targets != ignore_index  # [N]
        safe_targets = torch.where(valid, targets, 0)  # [N], ignored rows point at class 0
        # Mean over the non-ignored rows, kept on the device (no sync); 0 rows -> nan,
        # as F.cross_entropy.
        count = valid.sum().to(torch.float32)
        scale = 1.0 / count if reduction == "mean" else torch.ones((), device=hidden.device)
        row_weight = valid.to(torch.float32) * scale  # [N]

        w = weight.to(dtype)  # [V, d]
        b = bias.to(dtype) if bias is not None else None  # [V]
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_h = torch.empty_like(hidden) if need_h else None  # [N, d]
        f32 = {"dtype": torch.float32, "device": weight.device}
        grad_w = torch.zeros(weight.shape, **f32) if need_w else None  # [V, d]
        grad_b = torch.zeros(weight.shape[0], **f32) if need_b else None  # [V]
        with torch.autocast(hidden.device.type, enabled=False):
            for start in range(0, n_rows, chunk_rows):
                stop = min(start + chunk_rows, n_rows)
                h = hidden[start:stop].to(dtype)  # [c, d]
                t = safe_targets[start:stop, None]  # [c, 1]
                rw = row_weight[start:stop, None]  # [c, 1]
                logits = h @ w.T if b is None else torch.addmm(b, h, w.T)  # [c, V]
                logits = logits.float()
                # log-sum-exp written over the logits in place, so one [c, V] float32
                # buffer is all a chunk holds (torch.logsumexp would allocate another).
                target_logit = logits.gather(1, t)  # [c, 1]
                row_max = logits.amax(dim=-1, keepdim=True)  # [c, 1]
                p = logits.sub_(row_max).exp_()  # [c, V], exp(logit - max)
                norm = p.sum(dim=-1, keepdim=True)  # [c, 1]
                nll = norm.log() + row_max - target_logit  # [c, 1]
                total += (nll * rw).sum()
                if not (need_h or need_w or need_b):
                    del logits, p
                    continue
                # d(sum of weighted nll)/d logits = (softmax - one_hot) * row weight, in
                # two passes: p * (row weight / norm), then - row weight at the targets.
                g = p.mul_(rw / norm)  # [c, V]
                g.scatter_add_(1, t, -rw)
                g_c = g.to(dtype)  # [c, V]
                if grad_h is not None:
                    grad_h[start:stop] = g_c @ w  # [c, d]
                if grad_w is not None and dtype == torch.float32:
                    grad_w.addmm_(g_c.T, h)  # [V, d]
                elif grad_w is not None:
                    grad_w += (g_c.T @ h).float()  # [V, d], rounded once per chunk
                if grad_b is not None:
                    grad_b += g.sum(0)  # [V]
                del logits, p, g, g_c  # free this chunk before the next one is allocated
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        ctx.dtypes = (weight.dtype, bias.dtype if bias is not None else None)  # type: ignore[attr-defined]
        return total

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad_out: Tensor
    ) -> tuple[Tensor | None, ...]:
        grad_h, grad_w, grad_b = ctx.saved_tensors  # type: ignore[attr-defined]
        w_dtype, b_dtype = ctx.dtypes  # type: ignore[attr-defined]
        out_h = grad_h * grad_out.to(grad_h.dtype) if grad_h is not None else None
        out_w = (grad_w * grad_out).to(w_dtype) if grad_w is not None else None
        out_b = (grad_b * grad_out).to(b_dtype) if grad_b is not None else None
        return out_h, out_w, out_b, None, None, None, None, None


def linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    targets: Tensor,
    bias: Tensor | None = None,
    *,
    ignore_index: int = IGNORE_INDEX,
    reduction: str = "mean",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Tensor:
    """``cross_entropy(hidden @ weight.T + bias, targets)`` without the ``[N, V]`` logits.

    ``hidden`` is ``[..., d]``, ``targets`` the matching ``[...]`` class ids, ``weight``
    ``[V, d]``. Rows whose target is ``ignore_index`` add nothing; ``reduction`` is
    ``"mean"`` (over the other rows, as :func:`torch.nn.functional.cross_entropy`) or
    ``"sum"``. Double backward is not supported. :func:`picomaml.model.compile.compile_blocks`
    leaves it eager: its Python loop over chunks would only be unrolled into a graph.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"linear_cross_entropy: reduction must be mean or sum, got {reduction!r}")
    if chunk_rows < 1:
        raise ValueError(f"linear_cross_entropy: chunk_rows must be >= 1, got {chunk_rows}")
    if hidden.shape[:-1] != targets.shape:
        raise ValueError(
            f"linear_cross_entropy: hidden {tuple(hidden.shape)} and targets "
            f"{tuple(targets.shape)} do not match"
        )
    dtype = _compute_dtype(hidden, weight)
    flat_h = hidden.reshape(-1, hidden.shape[-1])  # [N, d]
    flat_t = targets.reshape(-1)  # [N]
    return _ChunkedLinearCrossEntropy.apply(
        flat_h, weight, bias, flat_t, ignore_index, reduction, chunk_rows, dtype
    )


def ar_loss(model: nn.Module, rows: Tensor) -> Tensor:
    """Mean next-token cross-entropy of packed ``rows[B, L+1]``.

    Inputs are ``rows[:, :-1]`` and targets ``rows[:, 1:]`` (so every row of ``L+1``
    tokens yields ``L`` predictions). ``model(ids, targets=...)`` returns the loss
    (:meth:`picomaml.model.PicoDecoder.forward`): it is computed chunk by chunk, so the
    ``[B*L, V]`` logits are never held at once, with the softmax in float32 whatever the
    compute dtype, because a bf16 log-softmax over 50k classes loses precision.
    """
    if rows.dim() != 2 or rows.shape[1] < 2:
        raise ValueError(f"ar_loss: expected rows [B, L+1] with L >= 1, got {tuple(rows.shape)}")
    return model(rows[:, :-1], targets=rows[:, 1:])


__all__ = ["DEFAULT_CHUNK_ROWS", "IGNORE_INDEX", "ar_loss", "linear_cross_entropy"]

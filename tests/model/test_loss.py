"""Chunked linear + cross-entropy against the plain full-logits implementation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from picomaml.model import PicoConfig, PicoDecoder
from picomaml.model.loss import ar_loss, linear_cross_entropy


def _close(actual: torch.Tensor, expected: torch.Tensor, rel: float) -> None:
    """Equal within ``rel`` relative to the tensor's largest entry (tiny entries included)."""
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=rel, atol=rel * scale)


def _tiny_model(vocab: int = 300) -> PicoDecoder:
    torch.manual_seed(0)
    cfg = PicoConfig(
        d_model=16, n_layers=2, n_heads=2, n_kv_heads=1, vocab_size=vocab, max_seq_len=128
    )
    return PicoDecoder(cfg)


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_model_loss_and_every_gradient_match_full_logits_fp32() -> None:
    model = _tiny_model()
    rows = torch.randint(0, 300, (3, 101))
    logits = model(rows[:, :-1])
    plain = F.cross_entropy(logits.reshape(-1, 300), rows[:, 1:].reshape(-1))
    (2.5 * plain).backward()  # a non-unit upstream gradient must scale the saved grads
    expected = _grads(model)
    model.zero_grad(set_to_none=True)

    chunked = ar_loss(model, rows)  # 300 rows: chunks of 256 and 44
    _close(chunked, plain, 1e-5)
    (2.5 * chunked).backward()
    for name, grad in _grads(model).items():
        _close(grad, expected[name], 1e-5)
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("chunk_rows", [1, 5, 64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_function_with_bias_ignore_index_and_ragged_chunks(chunk_rows: int, reduction: str) -> None:
    torch.manual_seed(1)
    n, d, v = 23, 8, 50
    leaves = [torch.randn(n, d), torch.randn(v, d) * 0.3, torch.randn(v) * 0.1]
    targets = torch.randint(0, v, (n,))
    targets[[0, 7, 8, 22]] = -100  # ignored rows, including the first and the last
    ref_leaves = [t.clone().requires_grad_() for t in leaves]
    new_leaves = [t.clone().requires_grad_() for t in leaves]

    h, w, b = ref_leaves
    ref = F.cross_entropy(F.linear(h, w, b), targets, ignore_index=-100, reduction=reduction)
    ref.backward()
    h, w, b = new_leaves
    out = linear_cross_entropy(h, w, targets, b, reduction=reduction, chunk_rows=chunk_rows)
    out.backward()

    _close(out, ref, 1e-5)
    for new, old in zip(new_leaves, ref_leaves, strict=True):
        _close(new.grad, old.grad, 1e-5)
    assert new_leaves[0].grad[[0, 7, 8, 22]].abs().max() == 0  # ignored rows get no gradient


def test_batched_targets_and_all_ignored() -> None:
    torch.manual_seed(2)
    h, w = torch.randn(2, 5, 4), torch.randn(9, 4)
    t = torch.randint(0, 9, (2, 5))
    expected = F.cross_entropy(F.linear(h, w).reshape(-1, 9), t.reshape(-1))
    _close(linear_cross_entropy(h, w, t, chunk_rows=3), expected, 1e-5)
    every = torch.full((2, 5), -100)
    assert torch.isnan(linear_cross_entropy(h, w, every))  # as F.cross_entropy: 0 / 0
    assert torch.isnan(F.cross_entropy(F.linear(h, w).reshape(-1, 9), every.reshape(-1)))


def test_no_grad_and_bad_arguments() -> None:
    h, w, t = torch.randn(4, 3), torch.randn(6, 3, requires_grad=True), torch.tensor([0, 1, 2, 5])
    with torch.no_grad():
        loss = linear_cross_entropy(h, w, t)
    assert not loss.requires_grad
    _close(loss, F.cross_entropy(h @ w.detach().T, t), 1e-5)
    with pytest.raises(ValueError, match="reduction"):
        linear_cross_entropy(h, w, t, reduction="none")
    with pytest.raises(ValueError, match="chunk_rows"):
        linear_cross_entropy(h, w, t, chunk_rows=0)
    with pytest.raises(ValueError, match="do not match"):
        linear_cross_entropy(h, w, t[:3])


def test_bf16_autocast_is_close_to_fp32_and_to_plain_autocast() -> None:
    """CPU autocast: matmuls in bf16, softmax in float32, float32 gradients."""
    model = _tiny_model(vocab=2000)
    rows = torch.randint(0, 2000, (4, 17))
    exact = ar_loss(model, rows)
    exact.backward()
    fp32 = _grads(model)
    model.zero_grad(set_to_none=True)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(rows[:, :-1])
        plain = F.cross_entropy(logits.reshape(-1, 2000).float(), rows[:, 1:].reshape(-1))
    plain.backward()
    plain_grads = _grads(model)
    model.zero_grad(set_to_none=True)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = ar_loss(model, rows)
    assert mixed.dtype == torch.float32
    mixed.backward()
    assert abs(mixed.item() - exact.item()) < 1e-2 * exact.item()
    assert abs(mixed.item() - plain.item()) < 1e-2 * exact.item()
    for name, grad in _grads(model).items():
        assert grad.dtype == torch.float32 and torch.isfinite(grad).all(), name
        for ref in (fp32[name], plain_grads[name]):
            cos = F.cosine_similarity(grad.flatten(), ref.flatten(), dim=0)
            assert cos > 0.99, (name, cos.item())


def test_bf16_weights_give_bf16_gradients() -> None:
    """``bf16-true``: parameters and their gradients stay in bf16."""
    torch.manual_seed(3)
    h = torch.randn(10, 8, dtype=torch.bfloat16, requires_grad=True)
    w = (torch.randn(40, 8) * 0.3).to(torch.bfloat16).requires_grad_()
    t = torch.randint(0, 40, (10,))
    loss = linear_cross_entropy(h, w, t, chunk_rows=4)
    loss.backward()
    assert loss.dtype == torch.float32
    assert h.grad.dtype == torch.bfloat16 and w.grad.dtype == torch.bfloat16
    ref = F.cross_entropy(h.detach().float() @ w.detach().float().T, t)
    assert abs(loss.item() - ref.item()) < 2e-2 * ref.item()

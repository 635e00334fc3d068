"""Pretraining bench and shared step functions: report shape, equal token counts, AR loss."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from picomaml.cli.main import main as cli_main
from picomaml.model import PicoConfig, PicoDecoder
from picomaml.pretrain.bench import main as bench_main
from picomaml.pretrain.bench import model_flops_per_token, peak_tflops
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.steps import ar_loss, build_sampler


def _tiny_model() -> PicoDecoder:
    torch.manual_seed(0)
    return PicoDecoder(PicoConfig(d_model=16, n_layers=1, n_heads=2, n_kv_heads=1, max_seq_len=64))


def test_ar_loss_matches_brute_force() -> None:
    model = _tiny_model()
    rows = torch.randint(0, 1000, (3, 9))
    logits = model(rows[:, :-1])
    expected = torch.stack(
        [-F.log_softmax(logits[b, t], -1)[rows[b, t + 1]] for b in range(3) for t in range(8)]
    ).mean()
    torch.testing.assert_close(ar_loss(model, rows), expected)
    with pytest.raises(ValueError):
        ar_loss(model, rows[:, :1])


def test_build_sampler_limits_the_pool() -> None:
    vocab = [" " + "abcdefghij"[i % 10] * (1 + i // 10) if i < 50 else "x" for i in range(60)]
    rows = np.random.default_rng(0).integers(0, 50, size=(100, 33))
    meta = MetaSection(
        ways=4,
        shots=2,
        queries=2,
        window=16,
        min_word_count=8,
        pool_tokens=330,
        max_word_frequency=1.0,
    )
    sampler = build_sampler(meta, rows, vocab, mask_id=99)
    assert sampler.rows.shape == (10, 33)
    ep = sampler.sample(np.random.default_rng(0))
    assert ep.support_ids.shape == (8, 16) and ep.query_ids.shape == (8, 16)


def test_bench_report(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    report = bench_main(
        out=out, model=_tiny_model(), device="cpu", ways=4, shots=2, queries=2, window=16,
        seq_len=32, warmup=1, iters=1, data_dir=None,
    )  # fmt: skip
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    cfg = report["config"]
    assert cfg["tokens_per_microbatch"] == 4 * 4 * 16 == cfg["ar_rows"] * 32
    assert report["maml_over_ar_time"] == pytest.approx(
        report["ar"]["tokens_per_s"] / report["maml"]["tokens_per_s"]
    )
    assert report["device"] == "cpu" and report["dtype"] == "float32"
    assert report["ar"]["mfu"] is None and "peak-tflops" in report["ar"]["peak_source"]


def test_model_flops_per_token_by_hand() -> None:
    """PaLM convention on a config small enough to count by hand."""
    cfg = PicoConfig(d_model=16, n_layers=1, n_heads=2, n_kv_heads=1, max_seq_len=64)
    # Matmul parameters: q, o 16x16 each; k, v 16x8 each; SwiGLU 3 x 16 x 64; output
    # projection vocab x 16. Norm weights (3 x 16) are counted too, as in the total.
    n = 2 * 256 + 2 * 128 + 3 * 16 * 64 + cfg.vocab_size * 16 + 3 * 16
    assert model_flops_per_token(cfg, 32) == 6 * n + 12 * 1 * 16 * 32
    assert peak_tflops("NVIDIA H200") == (989.4, "data sheet (H200, dense bf16)")
    assert peak_tflops("NVIDIA GeForce GTX 1080")[0] is None
    assert peak_tflops("cpu", 2.0) == (2.0, "--peak-tflops")
    report = bench_main(
        model=_tiny_model(), device="cpu", ways=4, shots=2, queries=2, window=16,
        seq_len=32, warmup=0, iters=1, data_dir=None, peak=1.0,
    )  # fmt: skip
    ar = report["ar"]
    assert ar["achieved_tflops"] == pytest.approx(
        ar["tokens_per_s"] * ar["model_flops_per_token"] / 1e12
    )
    assert ar["mfu"] == pytest.approx(ar["achieved_tflops"] / 1.0)


def test_bench_cli_rejects_token_mismatch(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli_main(["bench", "pretrain", "--ways", "3", "--seq-len", "1000", "--device", "cpu"])
    assert code == 2
    assert "multiple of --seq-len" in capsys.readouterr().err


def test_bench_ner_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    seen = {}
    fake = types.ModuleType("picomaml.ner.bench")
    fake.main = lambda args: seen.update(out=args.out, quick=args.quick) or 0
    monkeypatch.setitem(sys.modules, "picomaml.ner.bench", fake)
    assert cli_main(["bench", "ner", "--out", "x.json", "--quick"]) == 0
    assert seen == {"out": "x.json", "quick": True}

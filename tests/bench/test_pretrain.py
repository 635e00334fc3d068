"""Pretraining bench and shared step functions: report shape, equal token counts, AR loss."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from picomaml.bench.memory import MemorySpec, measure_in_this_process
from picomaml.bench.pico_train import load_pico_train
from picomaml.bench.pretrain import compile_modes, model_flops_per_token, peak_tflops
from picomaml.bench.pretrain import main as bench_main
from picomaml.cli.main import main as cli_main
from picomaml.errors import PicomamlError
from picomaml.model import PicoConfig, PicoDecoder, config_dict
from picomaml.model.loss import ar_loss
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.inputs import build_sampler


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
        seq_len=32, warmup=1, iters=1, data_root=None,
    )  # fmt: skip
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    cfg = report["config"]
    assert cfg["tokens_per_microbatch"] == 4 * 4 * 16 == cfg["ar_rows"] * 32
    assert report["maml_over_ar_time"] == pytest.approx(
        report["ar"]["tokens_per_s"] / report["maml"]["tokens_per_s"]
    )
    assert report["device"] == "cpu" and report["dtype"] == "float32"
    assert report["ar"]["mfu"] is None and "peak-tflops" in report["ar"]["peak_source"]
    # CPU defaults: eager only, chunked AR loss, peak memory from a fresh process each.
    assert cfg["compile_modes"] == ["eager"] and cfg["ar_loss"] == "chunked"
    assert report["mode"] == "eager" and report["ar"] == report["modes"]["eager"]["ar"]
    assert report["compile_speedup"] is None and report["vs_pico_train"] is None
    assert "fresh process" in report["memory_method"]
    for branch in ("ar", "maml"):
        assert report[branch]["peak_memory_bytes"] > 0


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
        seq_len=32, warmup=0, iters=1, data_root=None, peak=1.0, memory=False,
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


def test_compile_modes() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert compile_modes("auto", cpu) == ["eager"]
    assert compile_modes("auto", cuda) == ["eager", "compiled"]
    assert compile_modes("on", cpu) == ["compiled"] and compile_modes("off", cuda) == ["eager"]
    assert compile_modes("both", cpu) == ["eager", "compiled"]


def test_chunked_loss_peak_memory_is_a_fraction_of_full_logits() -> None:
    """In this process (the bench runs it in a fresh one): 512 rows x 50,304 classes."""
    cfg = PicoConfig(d_model=16, n_layers=1, n_heads=2, n_kv_heads=1, max_seq_len=512)
    rows = torch.randint(0, 50000, (1, 513), generator=torch.Generator().manual_seed(0))
    peaks = {
        impl: measure_in_this_process(
            MemorySpec(
                config=config_dict(cfg),
                branch="ar",
                compiled=False,
                seed=0,
                threads=torch.get_num_threads(),
                ar_loss=impl,
                rows=rows,
            )
        )  # fmt: skip
        for impl in ("full", "chunked")
    }
    logits_bytes = 512 * 50304 * 4
    assert peaks["full"] > 2 * logits_bytes  # logits, log-softmax and its gradient
    assert peaks["chunked"] < 0.7 * logits_bytes  # one chunk of 256 rows at a time


_FAKE_CONFIG = """
from dataclasses import dataclass


@dataclass
class ModelConfig:
    d_model: int = 768
    n_layers: int = 12
    vocab_size: int = 50304
    batch_size: int = 1024
    max_seq_len: int = 2048
    attention_n_heads: int = 12
    attention_n_kv_heads: int = 4
    activation_hidden_dim: int = 3072
    norm_eps: float = 1e-6
    position_emb_theta: float = 10000.0
"""

_FAKE_MODEL = """
from picomaml.model import PicoConfig
from picomaml.model import PicoDecoder as _Decoder


class PicoDecoder(_Decoder):
    \"\"\"pico-train's interface: built from its ModelConfig; forward -> (logits, cache).\"\"\"

    def __init__(self, model_config):
        c = model_config
        super().__init__(
            PicoConfig(
                d_model=c.d_model, n_layers=c.n_layers, n_heads=c.attention_n_heads,
                n_kv_heads=c.attention_n_kv_heads, vocab_size=c.vocab_size,
                max_seq_len=c.max_seq_len, activation_hidden_dim=c.activation_hidden_dim,
                norm_eps=c.norm_eps, rope_theta=c.position_emb_theta,
            )
        )

    def forward(self, input_ids, past_key_values=None, use_cache=False):
        return super().forward(input_ids), None
"""


def _fake_pico_train(root: Path, model_source: str = _FAKE_MODEL) -> Path:
    """A checkout laid out as pico-train's (``src`` without ``__init__``, as there)."""
    (root / "src" / "model").mkdir(parents=True)
    (root / "src" / "config").mkdir()
    (root / "src" / "model" / "__init__.py").write_text("from .pico_decoder import PicoDecoder\n")
    (root / "src" / "model" / "pico_decoder.py").write_text(model_source)
    (root / "src" / "config" / "__init__.py").write_text(_FAKE_CONFIG)
    return root


def test_vs_pico_train_with_a_fake_checkout(tmp_path: Path) -> None:
    src = _fake_pico_train(tmp_path / "pico-train")
    report = bench_main(
        model=_tiny_model(), device="cpu", ways=4, shots=2, queries=2, window=16,
        seq_len=32, warmup=0, iters=1, data_root=None, memory=False,
        vs_pico_train=src, vs_batch=3, vs_seq_len=20, vs_repeats=2,
    )  # fmt: skip
    vs = report["vs_pico_train"]
    assert (vs["batch"], vs["seq_len"], vs["repeats"]) == (3, 20, 2)
    assert vs["max_abs_logit_diff"] < 1e-5  # same weights, same arithmetic
    assert set(vs["seconds"]) == {"eager", "eager_full_logits", "pico_train"}
    assert set(vs["speedup"]) == set(vs["speedup_of_minimums"]) == {"eager", "eager_full_logits"}
    assert all(len(t) == 2 and min(t) > 0 for t in vs["all_seconds"].values())
    assert vs["speedup"]["eager"] == pytest.approx(
        vs["seconds"]["pico_train"] / vs["seconds"]["eager"]
    )
    assert set(vs["speedup_of_cpu_seconds"]) == {"eager", "eager_full_logits"}
    assert vs["speedup_of_minimums"]["eager"] == pytest.approx(
        min(vs["all_seconds"]["pico_train"]) / min(vs["all_seconds"]["eager"])
    )
    assert not any(m == "src" or m.startswith("src.") for m in sys.modules)


def test_vs_pico_train_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PicomamlError, match="not a pico-train checkout"):
        load_pico_train(tmp_path)
    broken = _fake_pico_train(tmp_path / "broken", "import transformers_is_not_here\n")
    with pytest.raises(PicomamlError, match="pip install transformers"):
        load_pico_train(broken)
    code = cli_main(
        ["bench", "pretrain", "--device", "cpu", "--vs-pico-train", str(tmp_path / "none")]
    )
    assert code == 2 and "not a pico-train checkout" in capsys.readouterr().err

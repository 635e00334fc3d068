"""``picomaml bench pretrain``: cost of a MAML micro-batch relative to an AR one.

Both branches are timed at the same token count: an episode reads
``ways * (shots + queries) * window`` tokens, and the AR micro-batch is sized to the
same number of input tokens (``rows * seq_len``). Each iteration is forward +
backward (no optimizer step); warm-up iterations are excluded and the figure is the
median over the timed iterations. The target is a MAML/AR time ratio of at most 1.5:
the episode never computes the vocabulary projection, runs the support windows
forward only, and its head only ever sees one feature vector per window.

The AR branch also reports its model FLOP utilisation: achieved model FLOP/s
(:func:`model_flops_per_token` x tokens/s) over the device's bf16 peak.
"""

from __future__ import annotations

import gzip
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from picomaml.data.tokenizer import EOS_ID, MASK_ID, load_tokenizer
from picomaml.errors import PicomamlError
from picomaml.fileio import write_json
from picomaml.model import PicoConfig, PicoDecoder, config_for, count_parameters
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.maml import MetaHead, episode_loss
from picomaml.pretrain.smlmt import Episode, decode_vocab
from picomaml.pretrain.steps import ar_loss, build_sampler

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, matched
# against torch.cuda.get_device_name(); anything else needs --peak-tflops for an MFU.
PEAK_BF16_TFLOPS: dict[str, float] = {
    "H200": 989.4,
    "H100 80GB HBM3": 989.4,  # the SXM part's device name
    "H100 PCIe": 756.0,
    "A100": 312.0,
    "L40S": 362.1,
}


def model_flops_per_token(config: PicoConfig, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward), PaLM appendix B convention.

    ``6 * N`` for the matmul parameters (every parameter but the input embedding, which is
    a lookup; the untied output projection is counted) plus ``12 * layers * d * seq_len``
    for the attention scores and values (causal masking not discounted). Why this
    convention: it is what published MFU figures use, so ours compare with theirs.
    """
    n_matmul = count_parameters(config)["total"] - config.vocab_size * config.d_model
    return 6.0 * n_matmul + 12.0 * config.n_layers * config.d_model * seq_len


def peak_tflops(device_name: str, override: float | None = None) -> tuple[float | None, str]:
    """The bf16 peak used for MFU and where it came from (``None`` when unknown)."""
    if override is not None:
        return override, "--peak-tflops"
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in device_name:
            return value, f"data sheet ({key}, dense bf16)"
    return None, "unknown device: pass --peak-tflops"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[int], None], warmup: int, iters: int, device: torch.device) -> float:
    """Median seconds per call of ``fn(i)`` over ``iters`` calls after ``warmup`` calls."""
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(iters):
        _sync(device)
        start = time.perf_counter()
        fn(warmup + i)
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _token_pool(
    data_dir: Path | None, n_tokens: int, seed: int
) -> tuple[np.ndarray, list[str], str]:
    """Real corpus tokens and vocabulary when the data root has them, else synthetic ones.

    The timing does not depend on which tokens are read, only on the shapes; real text
    just makes the episodes representative (number of masked positions per window).
    """
    if data_dir is not None:
        corpus = data_dir / "corpus" / "english-mini" / "train.jsonl.gz"
        if corpus.is_file():
            tok = load_tokenizer(data_dir)
            ids: list[int] = []
            with gzip.open(corpus, "rt", encoding="utf-8") as fh:
                for line in fh:
                    ids.extend(tok.encode(json.loads(line)["text"]).ids + [EOS_ID])
                    if len(ids) >= n_tokens:
                        break
            return np.asarray(ids[:n_tokens]), decode_vocab(tok), str(corpus)
    rng = np.random.default_rng(seed)
    vocab = [" " + "".join(chr(97 + int(c)) for c in str(i)) for i in range(3000)]
    return rng.integers(1000, 3000, size=n_tokens), vocab, "synthetic"


def run_bench(
    *,
    size: str = "tiny",
    device: str | None = None,
    ways: int | None = None,
    shots: int = 4,
    queries: int = 4,
    window: int = 128,
    seq_len: int = 2048,
    warmup: int | None = None,
    iters: int | None = None,
    seed: int = 0,
    data_dir: Path | None = None,
    model: nn.Module | None = None,
    peak: float | None = None,
) -> dict[str, Any]:
    """Time AR and MAML micro-batches at equal token counts; returns the JSON report.

    On CUDA the defaults are the paper's 32 ways, 2 warm-up and 5 timed iterations; on
    CPU 8 ways, 1 and 3 (a CPU run then takes one to two minutes). ``model`` replaces
    the tier's ``PicoDecoder`` (tests use a tiny one). ``peak`` (TFLOP/s) overrides the
    device's data-sheet peak for the AR branch's model FLOP utilisation (MFU).
    """
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = dev.type == "cuda"
    ways = ways or (32 if cuda else 8)
    warmup = (2 if cuda else 1) if warmup is None else warmup
    iters = (5 if cuda else 3) if iters is None else iters
    episode_tokens = ways * (shots + queries) * window
    if episode_tokens % seq_len:
        raise PicomamlError(
            f"bench: episode tokens {ways}x({shots}+{queries})x{window}={episode_tokens} "
            f"are not a multiple of --seq-len {seq_len}; pick sizes that divide"
        )
    rows = episode_tokens // seq_len
    torch.manual_seed(seed)
    if model is None:
        model = PicoDecoder(config_for(size, max_seq_len=max(seq_len, window)))
    model = model.to(dev).train()
    meta = MetaSection(
        enabled=True, ways=ways, shots=shots, queries=queries, window=window,
        min_word_count=max(shots + queries, 16),
        max_word_frequency=1e-3,
        pool_tokens=None,
    )  # fmt: skip
    d_model = model.hidden_states(torch.zeros(1, 2, dtype=torch.long, device=dev)).shape[-1]
    head = MetaHead.from_config(d_model, meta).to(dev)
    params = list(model.parameters()) + list(head.parameters())

    pool, vocab, source = _token_pool(data_dir, max(400_000, 4 * episode_tokens), seed)
    width = max(seq_len + 1, window)
    pool_rows = pool[: pool.size // width * width].reshape(-1, width)
    sampler = build_sampler(meta, pool_rows, vocab, MASK_ID)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    episodes: list[Episode] = [sampler.sample(rng) for _ in range(warmup + iters)]
    sample_s = (time.perf_counter() - start) / len(episodes)
    ar_rows = torch.from_numpy(pool_rows[:rows, : seq_len + 1].copy()).to(dev)

    bf16 = dev.type == "cuda" and torch.cuda.is_bf16_supported()
    dtype = torch.bfloat16 if bf16 else torch.float32

    def autocast():
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16)

    def zero() -> None:
        for p in params:
            p.grad = None

    def ar_step(_: int) -> None:
        zero()
        with autocast():
            loss = ar_loss(model, ar_rows)
        loss.backward()

    def maml_step(i: int) -> None:
        zero()
        with autocast():
            loss, _ = episode_loss(model, head, episodes[i], meta)
        loss.backward()

    ar_s = _time(ar_step, warmup, iters, dev)
    maml_s = _time(maml_step, warmup, iters, dev)
    n_params = sum(p.numel() for p in model.parameters())
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    flops_per_token = model_flops_per_token(model.config, seq_len)
    achieved = episode_tokens / ar_s * flops_per_token / 1e12
    peak_value, peak_source = peak_tflops(device_name, peak)
    return {
        "device": device_name,
        "dtype": str(dtype).replace("torch.", ""),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "config": {
            "size": size,
            "backbone_parameters": n_params,
            "ways": ways,
            "shots": shots,
            "queries": queries,
            "window": window,
            "inner_steps": meta.inner_steps,
            "seq_len": seq_len,
            "ar_rows": rows,
            "tokens_per_microbatch": episode_tokens,
            "warmup": warmup,
            "iters": iters,
            "pool": source,
        },
        "ar": {
            "seconds": ar_s,
            "tokens_per_s": episode_tokens / ar_s,
            "model_flops_per_token": flops_per_token,
            "achieved_tflops": achieved,
            "peak_tflops": peak_value,
            "peak_source": peak_source,
            "mfu": achieved / peak_value if peak_value else None,
        },
        "maml": {
            "seconds": maml_s,
            "tokens_per_s": episode_tokens / maml_s,
            "episode_sampling_seconds": sample_s,
        },
        "maml_over_ar_time": maml_s / ar_s,
        "target_ratio": 1.5,
        "meets_target": maml_s / ar_s <= 1.5,
    }


def main(
    *,
    size: str = "tiny",
    out: str | Path | None = None,
    data_dir: Path | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run the bench, print a one-line summary per branch and write the JSON to ``out``."""
    report = run_bench(size=size, data_dir=data_dir, **kwargs)
    print(
        f"pretrain bench ({report['device']}, {report['dtype']}, {size}, "
        f"{report['config']['tokens_per_microbatch']} tokens/micro-batch): "
        f"AR {report['ar']['tokens_per_s']:,.0f} tok/s, "
        f"MAML {report['maml']['tokens_per_s']:,.0f} tok/s, "
        f"MAML/AR time {report['maml_over_ar_time']:.2f} (target <= 1.5); "
        f"AR {report['ar']['achieved_tflops']:.3g} TFLOP/s"
        + (f", MFU {100 * report['ar']['mfu']:.1f}%" if report["ar"]["mfu"] is not None else "")
    )
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, report)
        print(f"wrote {path}")
    return report


__all__ = ["main", "run_bench"]

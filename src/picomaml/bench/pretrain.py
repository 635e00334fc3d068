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

Each branch is measured eager and/or with compiled blocks (:func:`compile_modes`),
with its peak memory per micro-batch (:mod:`picomaml.bench.memory`); with a
pico-train checkout, the AR step is also timed against pico-train's own decoder in the
same process (:mod:`picomaml.bench.pico_train`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import gzip
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from picomaml.bench.memory import (
    CUDA_METHOD,
    MemorySpec,
    cpu_peak_bytes,
    cuda_peak_bytes,
)
from picomaml.bench.pico_train import compare, load_pico_train
from picomaml.bench.steps import (
    ArLossImpl,
    Step,
    autocast_context,
    make_ar_step,
    make_maml_step,
)
from picomaml.data.tokenizer import EOS_ID, MASK_ID, load_tokenizer
from picomaml.errors import PicomamlError
from picomaml.fileio import write_json
from picomaml.model import PicoConfig, PicoDecoder, config_dict, config_for, count_parameters
from picomaml.model.compile import compile_blocks
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.inputs import build_sampler
from picomaml.pretrain.meta_head import MetaHead
from picomaml.pretrain.smlmt import Episode, decode_vocab

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


def _time(
    fn: Callable[[int], None], warmup: int, iters: int, device: torch.device
) -> tuple[float, float]:
    """Median seconds per call of ``fn(i)`` over ``iters`` calls after ``warmup`` calls,
    and the total seconds of the warm-up calls (where compilation happens)."""
    _sync(device)
    start = time.perf_counter()
    for i in range(warmup):
        fn(i)
    _sync(device)
    warmup_s = time.perf_counter() - start
    times = []
    for i in range(iters):
        _sync(device)
        start = time.perf_counter()
        fn(warmup + i)
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), warmup_s


def _token_pool(
    data_root: Path | None, n_tokens: int, seed: int
) -> tuple[np.ndarray, list[str], str]:
    """Real corpus tokens and vocabulary when the data root has them, else synthetic ones.

    The timing does not depend on which tokens are read, only on the shapes; real text
    just makes the episodes representative (number of masked positions per window).
    """
    if data_root is not None:
        corpus = data_root / "corpus" / "english-mini" / "train.jsonl.gz"
        if corpus.is_file():
            tok = load_tokenizer(data_root)
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


CompileModes = Literal["auto", "off", "on", "both"]


def compile_modes(setting: CompileModes, device: torch.device) -> list[str]:
    """Which of ``eager`` and ``compiled`` to measure: ``auto`` = both on CUDA, eager on CPU
    (compiling takes tens of seconds on a small CPU and did not pay off there)."""
    if setting == "auto":
        return ["eager", "compiled"] if device.type == "cuda" else ["eager"]
    return {"off": ["eager"], "on": ["compiled"], "both": ["eager", "compiled"]}[setting]


def _memory(
    step: Step,
    dev: torch.device,
    spec: MemorySpec,
) -> tuple[int | None, str]:
    if dev.type == "cuda":
        return cuda_peak_bytes(step, dev), CUDA_METHOD
    return cpu_peak_bytes(spec)


def _ar_rows(meta: MetaSection, episode_tokens: int, seq_len: int) -> int:
    """AR rows of ``seq_len`` tokens that hold as many tokens as one episode."""
    if episode_tokens % seq_len:
        raise PicomamlError(
            f"bench: episode tokens {meta.ways}x({meta.shots}+{meta.queries})x{meta.window}="
            f"{episode_tokens} are not a multiple of --seq-len {seq_len}; pick sizes that divide"
        )
    return episode_tokens // seq_len


def _check_window(model: nn.Module, vs_seq_len: int) -> None:
    """Fail before any timing when the pico-train comparison's rows exceed the window."""
    if vs_seq_len > model.config.max_seq_len:
        raise PicomamlError(
            f"bench: --vs-seq-len {vs_seq_len} exceeds the model window {model.config.max_seq_len}"
        )


def _rows(pool: np.ndarray, width: int) -> np.ndarray:
    """``pool`` cut into rows of ``width`` tokens (the tail that does not fill one dropped)."""
    return pool[: pool.size // width * width].reshape(-1, width)


def _inputs(
    data_root: Path | None,
    *,
    sampler_meta: MetaSection,
    seed: int,
    n_episodes: int,
    n_tokens: int,
    width: int,
) -> tuple[np.ndarray, str, list[Episode], float]:
    """The token pool, where it came from, ``n_episodes`` sampled episodes and the mean
    seconds to sample one (episodes are drawn before any timing)."""
    pool, vocab, source = _token_pool(data_root, n_tokens, seed)
    sampler = build_sampler(sampler_meta, _rows(pool, width), vocab, MASK_ID)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    episodes: list[Episode] = [sampler.sample(rng) for _ in range(n_episodes)]
    return pool, source, episodes, (time.perf_counter() - start) / len(episodes)


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
    data_root: Path | None = None,
    model: nn.Module | None = None,
    peak: float | None = None,
    compile: CompileModes = "auto",
    compile_backend: str = "inductor",
    ar_loss_impl: ArLossImpl = "chunked",
    memory: bool = True,
    vs_pico_train: str | Path | None = None,
    vs_batch: int | None = None,
    vs_seq_len: int | None = None,
    vs_repeats: int = 5,
) -> dict[str, Any]:
    """Time AR and MAML micro-batches at equal token counts; returns the JSON report.

    On CUDA the defaults are the paper's 32 ways, 2 warm-up and 5 timed iterations; on
    CPU 8 ways, 1 and 3 (a CPU run then takes one to two minutes). ``model`` replaces
    the tier's ``PicoDecoder`` (tests use a tiny one). ``peak`` (TFLOP/s) overrides the
    device's data-sheet peak for the AR branch's model FLOP utilisation (MFU).

    ``compile`` picks the modes measured (:func:`compile_modes`), ``compile_backend`` the
    ``torch.compile`` backend of the compiled one; the top-level ``ar``,
    ``maml`` and ratio are those of the mode ``runtime.compile: auto`` would use, when
    measured. ``ar_loss_impl="full"`` times the pre-chunking AR loss (whole logits).
    ``memory`` adds each branch's peak memory (:mod:`picomaml.bench.memory`).
    ``vs_pico_train`` (a pico-train checkout) adds a same-process AR speed ratio against
    its decoder on ``vs_batch x vs_seq_len`` tokens (default: the AR micro-batch); with
    the chunked loss, our eager model with the full-logits loss is timed there too.
    """
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = dev.type == "cuda"
    ways = ways or (32 if cuda else 8)
    warmup = (2 if cuda else 1) if warmup is None else warmup
    iters = (5 if cuda else 3) if iters is None else iters
    modes = compile_modes(compile, dev)
    if vs_pico_train is not None:
        load_pico_train(vs_pico_train)  # a bad checkout fails now, not after the timings
    meta = MetaSection(
        enabled=True, ways=ways, shots=shots, queries=queries, window=window,
        min_word_count=max(shots + queries, 16), max_word_frequency=1e-3, pool_tokens=None,
    )  # fmt: skip
    episode_tokens = ways * (shots + queries) * window
    rows = _ar_rows(meta, episode_tokens, seq_len)
    vs_batch, vs_seq_len = vs_batch or rows, vs_seq_len or seq_len
    torch.manual_seed(seed)
    if model is None:
        model = PicoDecoder(config_for(size, max_seq_len=max(seq_len, window, vs_seq_len)))
    if vs_pico_train is not None:
        _check_window(model, vs_seq_len)
    model = model.to(dev).train()
    head = MetaHead.from_config(model.config.d_model, meta).to(dev)

    pool, source, episodes, sample_s = _inputs(
        data_root, sampler_meta=meta, seed=seed, n_episodes=warmup + iters,
        n_tokens=max(400_000, 4 * episode_tokens, 2 * vs_batch * (vs_seq_len + 1)),
        width=max(seq_len + 1, window),
    )  # fmt: skip
    ar_rows = torch.from_numpy(_rows(pool, max(seq_len + 1, window))[:rows, : seq_len + 1].copy())
    ar_rows = ar_rows.to(dev)
    models = {m: _as_mode(model, m, compile_backend) for m in modes}
    device_name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    timing = _Timing(
        dev=dev, head=head, meta=meta, episodes=episodes, ar_rows=ar_rows,
        warmup=warmup, iters=iters, episode_tokens=episode_tokens,
        flops_per_token=model_flops_per_token(model.config, seq_len),
        peak=peak_tflops(device_name, peak), sample_s=sample_s,
        ar_loss_impl=ar_loss_impl, compile_backend=compile_backend, seed=seed,
        config=config_dict(model.config) if memory else None,
    )  # fmt: skip
    results, method = _time_modes(timing, models)
    vs = None
    if vs_pico_train is not None:
        vs_rows = pool[: vs_batch * (vs_seq_len + 1)].reshape(vs_batch, vs_seq_len + 1)
        vs = _vs_pico_train(vs_pico_train, models, model, vs_rows, timing, repeats=vs_repeats)
    config = {
        "size": size, "backbone_parameters": sum(p.numel() for p in model.parameters()),
        "ways": ways, "shots": shots, "queries": queries, "window": window,
        "inner_steps": meta.inner_steps, "seq_len": seq_len, "ar_rows": rows,
        "tokens_per_microbatch": episode_tokens, "warmup": warmup, "iters": iters,
        "pool": source, "ar_loss": ar_loss_impl, "compile_modes": modes,
        "compile_backend": compile_backend if "compiled" in modes else None,
    }  # fmt: skip
    _, dtype = autocast_context(dev)
    return {
        "device": device_name, "dtype": str(dtype).replace("torch.", ""),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "config": config,
        **_summary(results, "compiled" if cuda else "eager"),
        "memory_method": method, "vs_pico_train": vs,
    }  # fmt: skip


@dataclasses.dataclass(frozen=True)
class _Timing:
    """What every measured mode shares: the device, the inputs of both branches, the
    iteration counts and the FLOP accounting."""

    dev: torch.device
    head: MetaHead
    meta: MetaSection
    episodes: list[Episode]
    ar_rows: torch.Tensor
    warmup: int
    iters: int
    episode_tokens: int
    flops_per_token: float
    peak: tuple[float | None, str]
    sample_s: float
    ar_loss_impl: ArLossImpl
    compile_backend: str
    seed: int
    #: The model's config for the memory measurement; ``None``: memory is not measured.
    config: dict[str, Any] | None


def _as_mode(model: nn.Module, mode: str, backend: str) -> nn.Module:
    """``model`` itself for ``eager``; a copy with compiled blocks for ``compiled``."""
    return model if mode == "eager" else compile_blocks(copy.deepcopy(model), backend=backend)


def _time_modes(
    t: _Timing, models: dict[str, nn.Module]
) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Every mode's figures, and the memory method (``None`` when memory was not measured)."""
    results: dict[str, dict[str, Any]] = {}
    method = None
    for mode, m in models.items():
        results[mode], mode_method = _time_mode(t, mode, m)
        method = mode_method or method
    return results, method


def _time_mode(t: _Timing, mode: str, m: nn.Module) -> tuple[dict[str, Any], str | None]:
    """One mode's AR and MAML timings (and peak memory), and the memory method used."""
    ar_step = make_ar_step(m, t.ar_rows, t.dev, t.ar_loss_impl)
    maml_step = make_maml_step(m, t.head, t.episodes, t.meta, t.dev)
    ar_s, ar_first = _time(ar_step, t.warmup, t.iters, t.dev)
    maml_s, maml_first = _time(maml_step, t.warmup, t.iters, t.dev)
    achieved = t.episode_tokens / ar_s * t.flops_per_token / 1e12
    ar_mem = maml_mem = method = None
    if t.config is not None:
        spec = {
            "config": t.config, "compiled": mode == "compiled",
            "compile_backend": t.compile_backend, "seed": t.seed,
            "threads": torch.get_num_threads(),
        }  # fmt: skip
        ar_spec = MemorySpec(branch="ar", ar_loss=t.ar_loss_impl, rows=t.ar_rows.cpu(), **spec)
        maml_spec = MemorySpec(
            branch="maml", meta=dataclasses.asdict(t.meta), episode=t.episodes[0], **spec
        )
        ar_mem, method = _memory(ar_step, t.dev, ar_spec)
        maml_mem, method = _memory(maml_step, t.dev, maml_spec)
    peak_value, peak_source = t.peak
    return {
        "ar": {
            "seconds": ar_s,
            "tokens_per_s": t.episode_tokens / ar_s,
            "warmup_seconds": ar_first,
            "peak_memory_bytes": ar_mem,
            "model_flops_per_token": t.flops_per_token,
            "achieved_tflops": achieved,
            "peak_tflops": peak_value,
            "peak_source": peak_source,
            "mfu": achieved / peak_value if peak_value else None,
        },
        "maml": {
            "seconds": maml_s,
            "tokens_per_s": t.episode_tokens / maml_s,
            "warmup_seconds": maml_first,
            "peak_memory_bytes": maml_mem,
            "episode_sampling_seconds": t.sample_s,
        },
        "maml_over_ar_time": maml_s / ar_s,
    }, method


def _vs_pico_train(
    checkout: str | Path,
    models: dict[str, nn.Module],
    model: nn.Module,
    rows: np.ndarray,
    t: _Timing,
    *,
    repeats: int,
) -> dict[str, Any]:
    """Our AR step (each mode; with the chunked loss also eager with full logits, the
    before/after in the same process) against pico-train's decoder on ``rows``."""
    vs_rows = torch.from_numpy(rows.copy()).to(t.dev)
    ours = {
        name: functools.partial(make_ar_step(m, vs_rows, t.dev, t.ar_loss_impl), 0)
        for name, m in models.items()
    }
    if t.ar_loss_impl == "chunked" and "eager" in models:
        ours["eager_full_logits"] = functools.partial(
            make_ar_step(models["eager"], vs_rows, t.dev, "full"), 0
        )
    return compare(checkout, ours, model, vs_rows, t.dev, repeats=repeats, warmup=max(t.warmup, 1))


def _summary(results: dict[str, dict[str, Any]], default_mode: str) -> dict[str, Any]:
    """The report's headline: the figures of ``default_mode`` (else the first mode measured)
    against the 1.5 target, every mode, and the compile speed-up when both modes ran."""
    mode = default_mode if default_mode in results else next(iter(results))
    both = len(results) == 2
    return {
        "mode": mode,
        "ar": results[mode]["ar"],
        "maml": results[mode]["maml"],
        "maml_over_ar_time": results[mode]["maml_over_ar_time"],
        "target_ratio": 1.5,
        "meets_target": results[mode]["maml_over_ar_time"] <= 1.5,
        "modes": results,
        "compile_speedup": {
            b: results["eager"][b]["seconds"] / results["compiled"][b]["seconds"]
            for b in ("ar", "maml")
        }
        if both
        else None,
    }


def _mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.0f} MiB"


def main(
    *,
    size: str = "tiny",
    out: str | Path | None = None,
    data_root: Path | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run the bench, print a summary line per measured mode and write the JSON to ``out``."""
    report = run_bench(size=size, data_root=data_root, **kwargs)
    cfg = report["config"]
    print(
        f"pretrain bench ({report['device']}, {report['dtype']}, {size}, "
        f"{cfg['tokens_per_microbatch']} tokens/micro-batch, AR loss {cfg['ar_loss']}):"
    )
    for mode, r in report["modes"].items():
        mfu = r["ar"]["mfu"]
        print(
            f"  {mode}: AR {r['ar']['tokens_per_s']:,.0f} tok/s "
            f"(peak {_mib(r['ar']['peak_memory_bytes'])}), "
            f"MAML {r['maml']['tokens_per_s']:,.0f} tok/s "
            f"(peak {_mib(r['maml']['peak_memory_bytes'])}), "
            f"MAML/AR time {r['maml_over_ar_time']:.2f} (target <= 1.5); "
            f"AR {r['ar']['achieved_tflops']:.3g} TFLOP/s"
            + (f", MFU {100 * mfu:.1f}%" if mfu is not None else "")
        )
    if report["compile_speedup"] is not None:
        sp = report["compile_speedup"]
        print(f"  compile speed-up: AR {sp['ar']:.2f}x, MAML {sp['maml']:.2f}x")
    vs = report["vs_pico_train"]
    if vs is not None:
        cpu = vs["speedup_of_cpu_seconds"] or {}
        ratios = ", ".join(
            f"{n} {x:.2f}x (of minimums {vs['speedup_of_minimums'][n]:.2f}x"
            + (f", of CPU seconds {cpu[n]:.2f}x" if n in cpu else "")
            + ")"
            for n, x in vs["speedup"].items()
        )
        print(
            f"  vs pico-train's decoder, AR step {vs['batch']} x {vs['seq_len']} tokens, "
            f"{vs['repeats']} interleaved repeats, ratio of medians: {ratios} "
            f"(above 1: ours faster; max logit difference {vs['max_abs_logit_diff']:.2g})"
        )
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, report)
        print(f"wrote {path}")
    return report


__all__ = ["compile_modes", "main", "run_bench"]

"""NER speed benchmarks (``picomaml bench ner``): a benchmark, not a timed test.

Each entry of :data:`BENCHES` is ``(name, fn)`` with ``fn(settings) -> dict``; :func:`main`
runs them all and writes one JSON object ``{"env": {...}, name: result, ...}`` to ``out``.
The CRF part lives here; the head-cache part (cached features vs recomputing the backbone) is
in :mod:`picomaml.bench.head_cache`.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from picomaml.bench.head_cache import bench_head_cache
from picomaml.data.paths import no_data_root_error
from picomaml.fileio import write_json
from picomaml.ner.crf import LinearChainCRF

DEFAULT_OUT = Path("results/bench/ner.json")


def _devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _time(fn: Callable[[], object], iters: int, device: str) -> float:
    """Median seconds per call over ``iters`` calls, after two warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(iters):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def _bench_crf_on(
    device: str, emissions_cpu: torch.Tensor, tags_cpu: torch.Tensor, iters: int, seed: int
) -> dict:
    torch.manual_seed(seed)
    batch, length, num_tags = emissions_cpu.shape
    crf = LinearChainCRF(num_tags).to(device)
    emissions = emissions_cpu.to(device).requires_grad_(True)
    tags = tags_cpu.to(device)
    mask = torch.ones(batch, length, dtype=torch.bool, device=device)

    def train_step() -> None:
        crf.zero_grad(set_to_none=True)
        emissions.grad = None
        crf.nll(emissions, tags, mask).backward()

    def viterbi() -> None:
        crf.viterbi(emissions.detach(), mask)

    def marginals() -> None:
        with torch.no_grad():
            crf.marginals(emissions, mask)

    entry = {}
    for name, fn in (
        ("loglik_fwd_bwd", train_step),
        ("viterbi", viterbi),
        ("marginals", marginals),
    ):
        sec = _time(fn, iters, device)
        entry[name] = {"ms_per_batch": sec * 1e3, "sequences_per_s": batch / sec}
    return entry


def bench_crf(
    batch: int = 32, length: int = 40, num_tags: int = 7, iters: int = 20, seed: int = 0
) -> dict:
    """Throughput of the CRF on a full batch (all ``length`` words valid), per device.

    Reports sequences/s and ms per batch for: log-likelihood forward + backward (a training
    step of the head without the emission layer), Viterbi decoding, and forward-backward
    marginals (token confidence).
    """
    gen = torch.Generator().manual_seed(seed)
    emissions_cpu = torch.randn(batch, length, num_tags, generator=gen)
    tags_cpu = torch.randint(0, num_tags, (batch, length), generator=gen)
    results: dict = {
        "batch": batch,
        "length": length,
        "num_tags": num_tags,
        "iters": iters,
        "devices": {},
    }
    for device in _devices():
        results["devices"][device] = _bench_crf_on(device, emissions_cpu, tags_cpu, iters, seed)
    return results


@dataclass(frozen=True)
class NerBenchSettings:
    """What ``picomaml bench ner`` was asked for."""

    #: Smaller sizes for a fast check (the head-cache benchmark: 64 sentences, not 256).
    quick: bool = False
    #: Timed iterations (CRF: calls, default 20; head cache: epochs per variant, default 2,
    #: 1 with ``quick``).
    iters: int | None = None
    #: The data root the CLI resolved; None when it found none (the head-cache benchmark then
    #: stops with the missing-data line; the CRF one needs no data).
    data_root: Path | None = None


def crf_entry(settings: NerBenchSettings) -> dict:
    """The ``crf`` entry: :func:`bench_crf` with ``--iters`` calls (default 20)."""
    return bench_crf(iters=settings.iters or 20)


def head_cache_entry(settings: NerBenchSettings) -> dict:
    """The ``head_cache`` entry: :func:`~picomaml.bench.head_cache.bench_head_cache` on 256
    sentences (64 with ``quick``) for ``iters`` epochs per variant (default 2, quick 1)."""
    if settings.data_root is None:
        raise no_data_root_error()
    return bench_head_cache(
        settings.data_root,
        n_sentences=64 if settings.quick else 256,
        epochs=max(1, settings.iters or (1 if settings.quick else 2)),
    )


#: Benchmarks run by :func:`main`, in order: ``(name, fn(settings) -> dict)``.
BENCHES: list[tuple[str, Callable[[NerBenchSettings], dict]]] = [
    ("crf", crf_entry),
    ("head_cache", head_cache_entry),
]


def environment() -> dict:
    """What the figures depend on: library versions, threads and hardware."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def main(settings: NerBenchSettings, out: str | Path | None = None) -> int:
    """Run every benchmark in :data:`BENCHES`, print a summary and write JSON to ``out``
    (default :data:`DEFAULT_OUT`)."""
    out = Path(out or DEFAULT_OUT)
    report: dict = {"env": environment()}
    for name, fn in BENCHES:
        report[name] = fn(settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, report)
    crf = report.get("crf")
    if crf:
        for device, entry in crf["devices"].items():
            figures = ", ".join(f"{k} {v['sequences_per_s']:.0f} seq/s" for k, v in entry.items())
            print(f"CRF {crf['batch']}x{crf['length']} on {device}: {figures}")
    cache = report.get("head_cache")
    if cache:
        print(
            f"head-only epoch ({cache['n_sentences']} {cache['source']} sentences, "
            f"{cache['size']} backbone): cached {cache['epoch_s_cached']:.3f}s, "
            f"recomputed {cache['epoch_s_recompute']:.3f}s ({cache['speedup']:.1f}x)"
        )
    print(f"wrote {out}")
    return 0

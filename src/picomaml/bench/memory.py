"""Peak memory of one micro-batch, for ``picomaml bench pretrain``.

* CUDA: in the bench's process, ``torch.cuda.max_memory_allocated`` over the step,
  after ``reset_peak_memory_stats``, minus what was allocated before the step (model,
  optimizer-free: weights and inputs only).
* CPU: a **fresh Python process per measurement**, because freed memory that the C
  allocator keeps from earlier steps would hide part of a later step's peak. The child
  builds the same model (same seed) and inputs, runs one warm-up step (compiles, if
  asked), drops the gradients, returns free heap pages to the system
  (``malloc_trim``), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``),
  then runs the measured step. The figure is peak RSS (``VmHWM``) minus the RSS just
  before the step: the step's own activations, logits, gradients and temporaries. It
  needs Linux; elsewhere the CPU figure is ``None`` with the reason.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from picomaml.bench.steps import ArLossImpl, Step, make_ar_step, make_maml_step
from picomaml.errors import PicomamlError
from picomaml.model import PicoConfig, PicoDecoder
from picomaml.model.compile import compile_blocks
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.meta_head import MetaHead
from picomaml.pretrain.smlmt import Episode

CPU_METHOD = (
    "fresh process per measurement: one warm-up step, malloc_trim, then peak RSS "
    "(VmHWM after /proc/self/clear_refs) minus RSS before the measured step"
)
CUDA_METHOD = "torch.cuda.max_memory_allocated over the step minus memory allocated before it"


def cuda_peak_bytes(step: Step, device: torch.device) -> int:
    """Bytes allocated at the step's peak above what was allocated before it."""
    step(0)  # warm-up: compile, cuBLAS workspaces, lazily created state
    step(1)  # the gradients of step 0 are dropped at the start of the next call
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step(2)
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


@dataclass
class MemorySpec:
    """Everything the child process needs to rebuild the measured step."""

    config: dict[str, Any]  # PicoConfig fields
    branch: str  # "ar" or "maml"
    compiled: bool
    seed: int
    threads: int
    ar_loss: ArLossImpl = "chunked"
    compile_backend: str = "inductor"
    rows: torch.Tensor | None = None  # AR rows [B, L+1]
    meta: dict[str, Any] | None = None  # MetaSection fields
    episode: Episode | None = None


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text(encoding="ascii")
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    if match is None:
        raise OSError(f"/proc/self/status has no {field}")
    return int(match.group(1))


def _trim_heap() -> None:
    gc.collect()
    # Not glibc: nothing to trim, and the figure may then read lower.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _build_step(spec: MemorySpec) -> Step:
    torch.manual_seed(spec.seed)
    model = PicoDecoder(PicoConfig(**spec.config)).train()
    if spec.compiled:
        compile_blocks(model, backend=spec.compile_backend)
    device = torch.device("cpu")
    if spec.branch == "ar":
        assert spec.rows is not None
        return make_ar_step(model, spec.rows, device, spec.ar_loss)
    assert spec.meta is not None and spec.episode is not None
    meta = MetaSection(**spec.meta)
    head = MetaHead.from_config(model.config.d_model, meta)
    return make_maml_step(model, head, [spec.episode], meta, device)


def measure_in_this_process(spec: MemorySpec) -> int:
    """The CPU measurement itself; only meaningful in a fresh process (see module doc)."""
    torch.set_num_threads(spec.threads)
    step = _build_step(spec)
    step(0)
    step(1)  # drops step 0's gradients, then allocates its own
    step.drop_grads()
    _trim_heap()
    Path("/proc/self/clear_refs").write_text("5", encoding="ascii")  # reset VmHWM
    before = _status_kib("VmRSS")
    step(2)
    return (_status_kib("VmHWM") - before) * 1024


def cpu_peak_bytes(spec: MemorySpec, timeout_s: float = 900.0) -> tuple[int | None, str]:
    """Run :func:`measure_in_this_process` in a fresh Python; ``(bytes, method)``.

    Returns ``(None, reason)`` where ``/proc/self/clear_refs`` is not available.
    """
    if not Path("/proc/self/clear_refs").exists():
        return None, "needs Linux /proc/self/clear_refs (peak RSS reset); not measured"
    with tempfile.TemporaryDirectory(prefix="picomaml-mem-") as tmp:
        path = Path(tmp) / "spec.pt"
        torch.save(dataclasses.asdict(spec), path)
        proc = subprocess.run(
            [sys.executable, "-m", "picomaml.bench.memory", str(path)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PicomamlError(
            f"bench: the memory measurement process failed ({proc.returncode}): {tail[0]}"
        )
    return int(json.loads(proc.stdout.strip().splitlines()[-1])["peak_bytes"]), CPU_METHOD


def _child(path: str) -> None:
    raw = torch.load(path, weights_only=False)  # our own temporary file
    episode = raw.get("episode")
    if isinstance(episode, dict):
        raw["episode"] = Episode(**episode)
    print(json.dumps({"peak_bytes": measure_in_this_process(MemorySpec(**raw))}))


if __name__ == "__main__":
    _child(sys.argv[1])

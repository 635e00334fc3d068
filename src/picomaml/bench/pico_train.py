"""Same-process speed ratio against pico-train's own decoder (``--vs-pico-train SRC``).

``SRC`` is a pico-train source checkout: its ``src/model`` package (``PicoDecoder``)
and ``src/config`` package (``ModelConfig``) are imported from there, never copied.
pico-train's model module imports ``transformers`` at the top, so that must be
installed. Both decoders get the same weights (the parameter names are the same), and
the report carries the largest logit difference between them as a check that the
comparison is like for like.

Each side runs forward + backward of its own training loss: ours is the AR step of
:mod:`picomaml.bench.steps`; pico-train's is what its trainer does,
``cross_entropy(logits.transpose(1, 2), labels)`` on the float32 logits. Repeats are
interleaved and the order rotates every repeat, so load on a shared machine falls on
both sides alike; the figures are medians.
"""

from __future__ import annotations

import importlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from picomaml.bench.steps import autocast_context
from picomaml.errors import PicomamlError
from picomaml.model.pico import PicoConfig
from picomaml.model.pico_files import PICO_TRAIN_BATCH_SIZE


@contextmanager
def _pico_train_on_path(src: Path) -> Iterator[None]:
    """Put ``src`` first on ``sys.path`` while importing, and forget its ``src.*`` modules
    afterwards, so a second checkout in the same process is imported afresh."""
    before = set(sys.modules)
    sys.path.insert(0, str(src))
    try:
        yield
    finally:
        sys.path.remove(str(src))
        for name in set(sys.modules) - before:
            if name == "src" or name.startswith("src."):
                del sys.modules[name]


def load_pico_train(src: str | Path) -> tuple[type[nn.Module], type]:
    """pico-train's ``PicoDecoder`` and ``ModelConfig`` classes from the checkout ``src``."""
    root = Path(src).expanduser().resolve()
    module_file = root / "src" / "model" / "pico_decoder.py"
    if not module_file.is_file():
        raise PicomamlError(
            f"--vs-pico-train {src}: not a pico-train checkout (no {module_file.relative_to(root)})"
        )
    with _pico_train_on_path(root):
        try:
            model_mod = importlib.import_module("src.model")
            config_mod = importlib.import_module("src.config")
        except ImportError as exc:
            raise PicomamlError(
                f"--vs-pico-train {src}: cannot import pico-train's model ({exc}); "
                "its model module needs `pip install transformers`"
            ) from exc
    try:
        return model_mod.PicoDecoder, config_mod.ModelConfig
    except AttributeError as exc:
        raise PicomamlError(f"--vs-pico-train {src}: no PicoDecoder / ModelConfig ({exc})") from exc


def pico_train_model(src: str | Path, config: PicoConfig) -> nn.Module:
    """pico-train's decoder with the architecture of ``config`` (weights: its own init)."""
    decoder_cls, config_cls = load_pico_train(src)
    their_config = config_cls(
        d_model=config.d_model,
        n_layers=config.n_layers,
        vocab_size=config.vocab_size,
        batch_size=PICO_TRAIN_BATCH_SIZE,
        max_seq_len=config.max_seq_len,
        attention_n_heads=config.n_heads,
        attention_n_kv_heads=config.n_kv_heads,
        activation_hidden_dim=config.hidden_dim,
        norm_eps=config.norm_eps,
        position_emb_theta=config.rope_theta,
    )
    return decoder_cls(their_config)


def pico_train_step(model: nn.Module, rows: Tensor, device: torch.device) -> Callable[[], None]:
    """Forward + backward of pico-train's training loss on ``rows[B, L+1]``."""
    autocast, _ = autocast_context(device)
    params = list(model.parameters())

    def step() -> None:
        for p in params:
            p.grad = None
        with autocast():
            logits, _ = model(rows[:, :-1])
            loss = F.cross_entropy(logits.transpose(1, 2), rows[:, 1:])
        loss.backward()

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_times(
    steps: dict[str, Callable[[], None]], repeats: int, warmup: int, device: torch.device
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and process-CPU seconds per call of each step, repeats interleaved with a
    rotating order. CPU time (all threads of this process) does not grow while the
    process waits for a core, so on a shared CPU it is the steadier of the two."""
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            _sync(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            steps[name]()
            _sync(device)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return wall, cpu


def compare(
    src: str | Path,
    ours: dict[str, Callable[[], None]],
    our_model: nn.Module,
    rows: Tensor,
    device: torch.device,
    *,
    repeats: int,
    warmup: int,
) -> dict[str, Any]:
    """Time ``ours`` (name -> step) against pico-train's decoder on ``rows``.

    ``our_model`` provides the architecture and the weights that pico-train's decoder
    receives. Returns the medians, pico-train time / our time per entry of ``ours``
    (above 1: ours is faster) and the logit check. The same ratio of the *minimum*
    times is reported too: on a shared machine, bursts of load from other processes
    last longer than one step and can hit more than half the repeats, and the minimum
    is then the better estimate of the uncontended cost. On CPU the ratio of the median
    process-CPU seconds is reported as well (see :func:`interleaved_times`).
    """
    theirs = pico_train_model(src, our_model.config).to(device).train()
    missing = theirs.load_state_dict(our_model.state_dict(), strict=False)
    if missing.missing_keys or missing.unexpected_keys:
        raise PicomamlError(
            f"--vs-pico-train {src}: parameter names differ from ours "
            f"(missing {missing.missing_keys[:3]}, unexpected {missing.unexpected_keys[:3]})"
        )
    with torch.no_grad():
        probe = rows[:1, : min(rows.shape[1] - 1, 64)]
        diff = (theirs(probe)[0].float() - our_model(probe).float()).abs().max().item()
    steps = {**ours, "pico_train": pico_train_step(theirs, rows, device)}
    times, cpu_times = interleaved_times(steps, repeats, warmup, device)
    medians = {name: statistics.median(t) for name, t in times.items()}
    minimums = {name: min(t) for name, t in times.items()}
    cpu_medians = {name: statistics.median(t) for name, t in cpu_times.items()}
    return {
        "src": str(Path(src).expanduser().resolve()),
        "batch": int(rows.shape[0]),
        "seq_len": int(rows.shape[1] - 1),
        "repeats": repeats,
        "warmup": warmup,
        "max_abs_logit_diff": diff,
        "seconds": medians,
        "min_seconds": minimums,
        "all_seconds": times,
        "speedup": {n: medians["pico_train"] / medians[n] for n in ours},
        "speedup_of_minimums": {n: minimums["pico_train"] / minimums[n] for n in ours},
        # CPU only: on CUDA the process time says nothing about the device's work.
        "cpu_seconds": cpu_medians if device.type == "cpu" else None,
        "speedup_of_cpu_seconds": {n: cpu_medians["pico_train"] / cpu_medians[n] for n in ours}
        if device.type == "cpu"
        else None,
    }


__all__ = ["compare", "interleaved_times", "load_pico_train", "pico_train_model"]

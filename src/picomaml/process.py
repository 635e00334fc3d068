"""SIGTERM as an orderly stop, and worker processes that die with their parent.

Why: SLURM, Kubernetes, ``timeout`` and ``kill`` end a job with SIGTERM. Python's default
is to die on the spot: temporary files stay behind, and the workers of ``grid --workers N``
(processes of their own) go on running with nobody to collect their results. Here SIGTERM
raises :class:`Terminated` in the main thread, so the same clean-up as for Ctrl-C runs
(temporary files removed, a checkpoint or results file either complete or absent), and
the CLI ends with one line and exit status 143 (128 + SIGTERM), as a shell reports it.

Grid workers install the same handler (:func:`setup_worker`) and, on Linux, ask the kernel
to send them SIGTERM when their parent dies (``PR_SET_PDEATHSIG``), so even a parent
killed with SIGKILL leaves no orphan; elsewhere a watcher thread polls the parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType

#: Exit status of a process ended by SIGTERM, as a shell reports it.
EXIT_TERMINATED = 128 + signal.SIGTERM

_PR_SET_PDEATHSIG = 1
_received = threading.Event()


class Terminated(SystemExit):
    """SIGTERM arrived. A :class:`SystemExit` (status 143): ``except Exception`` blocks do not
    swallow it, clean-up in ``finally`` and ``except BaseException`` runs, and where nothing
    catches it the process still exits quietly with 143."""

    def __init__(self) -> None:
        super().__init__(EXIT_TERMINATED)

    def __reduce__(self) -> tuple[type[Terminated], tuple[()]]:
        # A worker sends it back to the grid: it must unpickle (args would be (143,)).
        return (Terminated, ())


def terminating() -> bool:
    """Whether this process has received SIGTERM (a worker then starts no new work)."""
    return _received.is_set()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Once: a second SIGTERM during the clean-up ends the process the default way.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _received.set()
    raise Terminated()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (elsewhere,
    where no handler can be installed, nothing changes). Afterwards the previous handler is
    back and :func:`terminating` is false again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        # Also after a SIGTERM was handled (the one-shot handler is gone by then): a caller
        # that goes on, such as a test calling the CLI again, starts afresh.
        signal.signal(signal.SIGTERM, previous)
        _received.clear()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def die_with_parent(parent: int) -> None:
    """Have this process receive SIGTERM when ``parent`` (its parent's PID) ends."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before the request was made
                os.kill(os.getpid(), signal.SIGTERM)
            return
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def setup_worker(parent: int) -> None:
    """For a worker process: SIGTERM raises :class:`Terminated`, and the worker gets
    SIGTERM when ``parent`` dies."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    die_with_parent(parent)


__all__ = [
    "EXIT_TERMINATED",
    "Terminated",
    "die_with_parent",
    "setup_worker",
    "sigterm_raises",
    "terminating",
]

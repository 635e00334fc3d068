"""What ``picomaml tag RUN_DIR "text"`` (or ``--file F``, or stdin) does: NER tags for raw
text (parser: :mod:`picomaml.cli.parsers.tag`).

Input is streamed: lines are read, tagged and written in bounded batches
(:func:`picomaml.ner.tag_text.tag_stream`), so memory stays flat and, with a terminal or a pipe,
a line's tags appear as soon as the line arrives. When the input is a regular file
(``--file``, or stdin redirected from one) a progress bar in bytes goes to stderr.
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import select
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from tqdm.auto import tqdm

from picomaml.cli.common import data_root
from picomaml.errors import PicomamlError
from picomaml.ner.evaluate import load_run
from picomaml.ner.tag_text import format_result, split_words, tag_stream


def _regular_file_size(stream: IO[Any]) -> int | None:
    """Bytes left in ``stream`` when it is a regular file (not a terminal or pipe)."""
    try:
        fd = stream.fileno()
        info = os.fstat(fd)
    except (OSError, ValueError, io.UnsupportedOperation, AttributeError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    try:
        return max(0, info.st_size - os.lseek(fd, 0, os.SEEK_CUR))
    except OSError:
        return info.st_size


def _more_ready(stream: IO[Any]) -> Callable[[], bool]:
    """Whether another line of interactive ``stream`` can be read without waiting."""

    def ready() -> bool:
        try:
            return bool(select.select([stream], [], [], 0)[0])
        except (OSError, ValueError, io.UnsupportedOperation):
            return False  # cannot tell: tag what we have

    return ready


def _lines(stream: IO[str], name: str) -> Iterator[str]:
    """Lines of ``stream`` without their end of line; bad UTF-8 names the line."""
    number = 0
    while True:
        number += 1
        try:
            line = stream.readline()
        except UnicodeDecodeError as exc:
            raise PicomamlError(
                f"tag: {name} is not UTF-8 text (near line {number}: {exc.reason})"
            ) from exc
        if not line:
            return
        yield line.rstrip("\r\n")


def _open_input(args: argparse.Namespace, stack: ExitStack) -> tuple[Iterator[str], int | None]:
    """The input lines and, for a regular file, its size in bytes (for the progress bar);
    interactive input also gets ``args.more_ready``."""
    args.more_ready = None
    if args.text and args.file:
        raise PicomamlError("tag: give TEXT or --file, not both")
    if args.text:
        return iter([line for text in args.text for line in text.splitlines() or [""]]), None
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            raise PicomamlError(f"tag: --file {path} does not exist")
        fh = stack.enter_context(path.open(encoding="utf-8-sig", newline=None))
        return _lines(fh, str(path)), path.stat().st_size
    stream: IO[str] = sys.stdin
    size = _regular_file_size(stream)
    if hasattr(stream, "buffer"):  # decode UTF-8 ourselves, whatever the locale says
        stream = io.TextIOWrapper(stream.buffer, encoding="utf-8-sig", newline=None)
        stack.callback(stream.detach)
    if size is None:
        args.more_ready = _more_ready(stream)
    return _lines(stream, "stdin"), size


def _first_words(lines: Iterator[str]) -> Iterator[str]:
    """``lines`` again, after checking (reading no further than needed) that one has words."""
    seen = []
    for line in lines:
        seen.append(line)
        if split_words(line):
            return itertools.chain(seen, lines)
    raise PicomamlError("tag: no text to tag (all input lines are empty or invisible)")


def run(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        lines, size = _open_input(args, stack)
        lines = _first_words(lines)
        loaded = load_run(
            args.run_dir, device=args.device, data_root=data_root(args, required=False)
        )
        bar = None
        if size is not None and args.progress:
            bar = stack.enter_context(
                tqdm(total=size, desc="tag", unit="B", unit_scale=True, file=sys.stderr)
            )
            lines = _counted(lines, bar)

        # On one terminal, output clears the bar and redraws it below; otherwise they
        # go to different places and do not mix.
        shared = bar is not None and _isatty(sys.stdout) and _isatty(sys.stderr)

        def out(text: str, err: bool = False) -> None:
            target = sys.stderr if err else sys.stdout
            if shared or (err and bar is not None):
                bar.write(text, file=target)
            else:
                print(text, file=target, flush=err)

        first = True
        for part in tag_stream(loaded, lines, args.normalize, args.more_ready):
            for n in part.skipped_lines:
                out(f"picomaml tag: line {n} has no words, skipped", err=True)
            if part.sentences:
                text = format_result(part, args.json)
                out(text if first or args.json else "\n" + text)
                first = False
            sys.stdout.flush()
        if bar is not None:
            bar.update(max(0, bar.total - bar.n))
    return 0


def _isatty(stream: IO[Any]) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def _counted(lines: Iterator[str], bar: Any) -> Iterator[str]:
    """``lines``, advancing ``bar`` by each line's size in bytes (its end of line included)."""
    for line in lines:
        bar.update(len(line.encode("utf-8")) + 1)
        yield line

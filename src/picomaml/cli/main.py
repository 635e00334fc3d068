"""``picomaml`` entry point.

Each stage owns a parser module in :mod:`picomaml.cli.parsers` exposing
``register(subparsers)`` (argparse-level code only) and a handler module in
:mod:`picomaml.cli` that imports its stack; the parser stores the handler as ``func``, a
:class:`~picomaml.cli.common.Handler` that imports the handler's module only when the
command runs, so ``picomaml --help`` loads no stack.

Every fault a user can meet ends in one line on stderr, never a traceback:
user errors (:class:`PicomamlError`, exit 2), failures of the file system such as a full disk
or a missing permission (:class:`OSError`, exit 1, naming the path and the cause), Ctrl-C
(exit 130) and SIGTERM (exit 143). A reader that closes the pipe early (``picomaml ... | head``)
ends the command quietly, as it ends ``cat`` (exit 141, 128 + SIGPIPE). The catalogue of
faults and what a user sees: ``docs/reliability.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import os
import signal
import sys
from typing import NoReturn

from picomaml.errors import PicomamlError
from picomaml.process import EXIT_TERMINATED, Terminated, sigterm_raises

STAGES = [
    "data",
    "model",
    "pretrain",
    "probe",
    "finetune",
    "evaluate",
    "tag",
    "push",
    "bench",
    "study",
]
DATA_DIR_HELP = "data root (default: $PICOMAML_DATA, else ../shared/data, else ./data)"
#: Longest error line printed: a message quoting a huge value (a YAML alias bomb, a
#: 1 MB token) is cut, never tens of megabytes on a terminal.
MAX_ERROR_CHARS = 2000
#: Exit status after the reader of stdout went away (as a process killed by SIGPIPE).
EXIT_BROKEN_PIPE = 128 + 13


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``parser`` (commands and their subcommands)."""
    out: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                out += [child, *_subparsers(child)]
    return out


def build_parser() -> argparse.ArgumentParser:
    """Assemble the parser from every stage module."""
    parser = argparse.ArgumentParser(
        prog="picomaml",
        description="Meta-pretraining of Pico decoders and zero-shot cross-lingual NER.",
    )
    parser.add_argument("--data-dir", default=None, metavar="DIR", help=DATA_DIR_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for stage in STAGES:
        importlib.import_module(f"picomaml.cli.parsers.{stage}").register(sub)
    # `--data-dir` is accepted after every command too. SUPPRESS: a command that was not
    # given it must not overwrite the global one with its default.
    for child in _subparsers(parser):
        if "--data-dir" not in child._option_string_actions:
            child.add_argument(
                "--data-dir",
                dest="sub_data_dir",
                default=argparse.SUPPRESS,
                metavar="DIR",
                help=DATA_DIR_HELP,
            )
    return parser


def os_error_line(exc: OSError) -> str:
    """One line for a file-system failure: the path(s), the cause and its errno name."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    cause = exc.strerror or str(exc)
    code = errno.errorcode.get(exc.errno or -1)
    line = one_line(f"{where}: {cause}" if where else cause)
    return f"{line} ({code})" if code else line


def _close_progress_bars() -> None:
    """Close open tqdm bars, so their last line is printed before ours, not after it."""
    std = sys.modules.get("tqdm.std")
    if std is not None:
        for bar in list(getattr(std.tqdm, "_instances", ())):
            bar.close()


def one_line(message: str) -> str:
    """``message`` on one line (YAML and torch errors span several), at most
    :data:`MAX_ERROR_CHARS` characters."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    if len(line) > MAX_ERROR_CHARS:
        cut = len(line) - MAX_ERROR_CHARS
        line = f"{line[:MAX_ERROR_CHARS]}... ({cut:,} more characters cut)"
    return line


def _quiet_stdout() -> None:
    """Point stdout at the null device, so the interpreter's last flush of a closed pipe
    cannot print "Exception ignored ... BrokenPipeError" after we are done."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _dispatch(argv: list[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse stops filling a trailing ``nargs="*"`` positional at the first option, so
    # ``tag RUN --json "text"`` or ``finetune a=1 --out X b=2`` leave words over; commands
    # that set ``trailing_into`` (and every command taking key=value ``overrides``) take
    # such leftovers (never anything that looks like an option) into that list.
    into = getattr(args, "trailing_into", None)
    if into is None and isinstance(getattr(args, "overrides", None), list):
        into = "overrides"
    if extra and into and not any(x.startswith("-") for x in extra):
        getattr(args, into).extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    try:
        with sigterm_raises():
            return _dispatch(argv)
    except BrokenPipeError:
        _close_progress_bars()
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except PicomamlError as exc:
        _close_progress_bars()
        print(f"picomaml: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        _close_progress_bars()
        print(f"picomaml: error: {os_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _close_progress_bars()
        print("picomaml: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        _close_progress_bars()
        print("picomaml: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED


def console_main() -> NoReturn:
    """The ``picomaml`` script: :func:`main`, then exit.

    Once the command is done, Ctrl-C ends the process at once as SIGINT does (status 130 in
    the shell): without this, a Ctrl-C while the interpreter runs its exit hooks (torch,
    Lightning, tqdm) prints "Exception ignored in atexit callback" and a traceback, exit 0.
    """
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        code = code or EXIT_BROKEN_PIPE
    except (OSError, ValueError):
        pass
    with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing reaches it
        sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(code)


if __name__ == "__main__":
    console_main()

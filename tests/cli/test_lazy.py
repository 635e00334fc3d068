"""The CLI is lazy: ``picomaml --help`` and every command's ``--help`` import none of the heavy
stacks (torch, Lightning, matplotlib, pyarrow) nor the optional ones (transformers, spaCy,
huggingface_hub); each handler names a module and function that exist."""

from __future__ import annotations

import json
import subprocess
import sys

from picomaml.cli.common import Handler
from picomaml.cli.main import _subparsers, build_parser

HEAVY = ("torch", "lightning", "matplotlib", "pyarrow", "transformers", "spacy", "huggingface_hub")

# Runs every parser's --help in one fresh interpreter, noting after each which heavy modules
# are loaded: modules only accumulate, so the first command that loads one is named.
EVERY_HELP = f"""
import contextlib, io, json, sys
from picomaml.cli.main import _subparsers, build_parser, main
commands = [p.prog.split()[1:] for p in _subparsers(build_parser())]
seen = {{}}
for argv in [[], *commands]:
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
        main([*argv, "--help"])
    assert "usage: picomaml" in out.getvalue(), argv
    seen[" ".join(argv) or "(none)"] = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps(seen))
"""


def test_every_help_imports_no_heavy_stack() -> None:
    out = subprocess.run(
        [sys.executable, "-c", EVERY_HELP], capture_output=True, text=True, check=True
    )
    seen = json.loads(out.stdout)
    assert len(seen) > 25 and "bench tag" in seen and "data names check" in seen
    assert {command: mods for command, mods in seen.items() if mods} == {}


def test_the_entry_point_help_imports_no_heavy_stack() -> None:
    """The installed entry point (``console_main``), as ``picomaml --help`` runs it."""
    code = (
        "import sys\n"
        "from picomaml.cli.main import console_main\n"
        "try:\n"
        "    sys.argv = ['picomaml', '--help']\n"
        "    console_main()\n"
        "except SystemExit as exc:\n"
        f"    heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "    print('EXIT', exc.code, heavy, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "COMMAND" in out.stdout and "finetune" in out.stdout
    assert out.stderr.strip() == "EXIT 0 []", out.stderr


def test_every_handler_resolves_to_a_function() -> None:
    """A handler is a string until its command runs: a typo would only show then."""
    handlers = [p.get_default("func") for p in _subparsers(build_parser())]
    lazy = [h for h in handlers if isinstance(h, Handler)]
    assert len(lazy) >= 20
    for h in lazy:
        assert callable(h.resolve()), h

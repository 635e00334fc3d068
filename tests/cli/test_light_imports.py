"""``picomaml --help`` (and each command's help) imports none of the optional heavy stacks:
transformers, spaCy and huggingface_hub are imported inside the handlers that need them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("transformers", "spacy", "huggingface_hub")


def test_help_imports_no_optional_stack():
    code = (
        "import sys, contextlib, io\n"
        "from picomaml.cli.main import main\n"
        "for argv in (['--help'], ['push', '--help'], ['model', 'export', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

"""The parsers of the ``picomaml`` commands: one module per stage, each with
``register(subparsers)``.

Argparse-level code only (flags, help text, ranges): every handler is named by a
:func:`picomaml.cli.common.handler` string and lives in the stage's module one level up
(:mod:`picomaml.cli.tag` for ``picomaml tag``), which imports its stack at the top. So
``picomaml --help`` builds every parser without loading torch, Lightning, matplotlib or
pyarrow (``tests/cli/test_lazy.py`` checks it for every command).
"""

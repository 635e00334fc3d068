"""Command-line interface: per pipeline stage, a parser and a handler module.

:mod:`picomaml.cli.parsers` holds the parsers (``register(subparsers)``, argparse-level code
only); ``picomaml.cli.<stage>`` holds what the commands do and imports their stack (torch,
Lightning, matplotlib) at the top. The parser names each handler as a string, so building the
parser (``picomaml --help``, a one-line usage error) never pays seconds for loading torch.
"""

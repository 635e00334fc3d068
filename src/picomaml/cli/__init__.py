"""Command-line interface: one module per pipeline stage, each with ``register(subparsers)``."""

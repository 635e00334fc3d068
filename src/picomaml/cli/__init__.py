"""Command-line interface: one module per pipeline stage, each with ``register(subparsers)``.

Stage modules import their stack (torch, Lightning, matplotlib) inside the command handler,
not at the top: building the parser imports every stage module, and ``picomaml --help`` or a
one-line user error must not pay seconds for loading torch.
"""

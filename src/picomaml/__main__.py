"""``python -m picomaml``: the CLI, for environments where the script is not installed."""

from picomaml.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())

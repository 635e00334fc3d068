"""``python -m picomaml``: the CLI, for environments where the script is not installed."""

from picomaml.cli.main import console_main

if __name__ == "__main__":
    console_main()

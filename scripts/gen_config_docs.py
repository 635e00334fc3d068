"""Write docs/config.md from the config dataclasses (:mod:`picomaml.config_docs`).

Run after adding or changing a config key: ``python scripts/gen_config_docs.py``
(``--check`` exits 1 when the file is out of date instead of writing it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from picomaml.config_docs import missing_descriptions, render

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is current")
    args = parser.parse_args(argv)
    missing = missing_descriptions()
    if missing:
        print(f"gen_config_docs: no docstring for {', '.join(missing)}", file=sys.stderr)
        return 1
    text = render()
    if args.check:
        current = DOC.is_file() and DOC.read_text(encoding="utf-8") == text
        print(f"{DOC}: {'up to date' if current else 'out of date'}")
        return 0 if current else 1
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

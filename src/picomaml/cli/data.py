"""CLI: ``picomaml data stats``, ``data corpus`` and ``data download``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from picomaml.cli.common import data_root, explicit_data_dir, int_arg
from picomaml.data.paths import ENV_VAR


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its subcommands."""
    p = sub.add_parser("data", help="dataset statistics and download")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: _help(p))

    st = dsub.add_parser(
        "stats", help="sentences, tokens and entity spans per type of a UNER dataset"
    )
    st.add_argument("dataset", help="dataset code (e.g. sk_snk, tl_trg) or 'all'")
    st.add_argument("--split", default=None, help="train, dev or test (default: every split)")
    st.add_argument("--json", action="store_true", help="print JSON instead of a table")
    st.set_defaults(func=_stats)

    co = dsub.add_parser(
        "corpus", help="tokenize and pack a pretraining corpus (fills the token cache)"
    )
    co.add_argument(
        "path",
        nargs="?",
        default="corpus/english-mini/train.jsonl.gz",
        help="documents or parquet shards; a relative path is looked up under the data root "
        "unless it starts with ./ or ../ (default: corpus/english-mini/train.jsonl.gz)",
    )
    co.add_argument(
        "--seq-len", type=int_arg("--seq-len", 1), default=2048, help="model sequence length"
    )
    co.add_argument("--kind", default="auto", choices=["auto", "jsonl", "text", "parquet"])
    co.add_argument("--text-field", default="text", help="JSONL field holding the text")
    co.add_argument("--cache-dir", default=None, help="token cache (default: $PICOMAML_CACHE)")
    co.add_argument("--json", action="store_true", help="print JSON")
    co.set_defaults(func=_corpus)

    dl = dsub.add_parser(
        "download",
        help="fetch the UNER v1 files and build the English stand-in corpus (needs internet)",
        description="Without a selection: every UNER v1 dataset and the english-mini corpus "
        "built from public-domain NLTK corpora. With --datasets, --corpus or --tokenizer: only "
        "what is selected. SHA-256 checksums go to DEST/manifest.json on first download "
        "and are verified on every rerun.",
    )
    dl.add_argument(
        "--dest",
        default=None,
        help=f"data root to fill (default: --data-dir, else ${ENV_VAR}, else ./data)",
    )
    dl.add_argument(
        "--datasets", nargs="+", default=None, metavar="CODE", help="only these UNER datasets"
    )
    dl.add_argument(
        "--corpus",
        action="store_true",
        help="the english-mini stand-in corpus (NLTK gutenberg, state_union, inaugural)",
    )
    dl.add_argument(
        "--tokenizer",
        action="store_true",
        help="also the hub copy of the OLMo tokenizer (a DATA_ROOT override; the package "
        "ships one)",
    )
    dl.add_argument(
        "--base-url",
        default=None,
        help="where the UNER repositories are served ({base}/{folder}/{branch}/{file}; "
        "default: raw.githubusercontent.com/UniversalNER)",
    )
    dl.add_argument(
        "--corpus-url",
        default=None,
        help="where the NLTK corpus zips are served ({url}/{package}.zip; default: "
        "raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/corpora)",
    )
    dl.add_argument(
        "--tokenizer-url", default=None, help="URL of the OLMo tokenizer JSON (implies --tokenizer)"
    )
    dl.add_argument("--no-tokenizer", action="store_true", help=argparse.SUPPRESS)
    dl.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: only on a terminal)",
    )
    dl.set_defaults(func=_download)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _stats(args: argparse.Namespace) -> int:
    from picomaml.data.registry import dataset_splits
    from picomaml.data.stats import format_stats, split_stats

    splits = [args.split] if args.split else list(dataset_splits(args.dataset))
    root = data_root(args)
    results = [split_stats(args.dataset, s, root) for s in splits]
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=1))
    else:
        print("\n".join(format_stats(r) for r in results))
    return 0


def _corpus(args: argparse.Namespace) -> int:
    from picomaml.data.corpus import default_cache_dir, load_rows
    from picomaml.data.tokenizer import load_tokenizer

    path = Path(args.path).expanduser()
    if not (path.is_absolute() or args.path.startswith(("./", "../"))):
        path = data_root(args) / path
    is_parquet = args.kind == "parquet" or (args.kind == "auto" and path.suffix == ".parquet")
    tokenizer = None if is_parquet else load_tokenizer(data_root(args, required=False))
    rows = load_rows(path, args.seq_len, args.kind, tokenizer, args.text_field, args.cache_dir)
    info = {
        "path": str(path),
        "seq_len": rows.seq_len,
        "rows": rows.n_rows,
        "tokens": rows.n_tokens,
        "dropped_tokens": rows.dropped_tokens,
        "cache_dir": str(Path(args.cache_dir) if args.cache_dir else default_cache_dir()),
    }
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        print(
            f"{path}: {rows.n_rows} rows of {rows.seq_len + 1} tokens ({rows.n_tokens} tokens; "
            f"{rows.dropped_tokens} tail tokens dropped); token cache {info['cache_dir']}"
        )
    return 0


def _download(args: argparse.Namespace) -> int:
    from picomaml.data.download import TOKENIZER_URL, UNER_BASE_URL, download
    from picomaml.data.registry import get_dataset
    from picomaml.data.standin import NLTK_BASE_URL

    dest = Path(args.dest or explicit_data_dir(args) or os.environ.get(ENV_VAR) or "data")
    want_tokenizer = (args.tokenizer or args.tokenizer_url is not None) and not args.no_tokenizer
    selected = args.datasets is not None or args.corpus or want_tokenizer
    codes = [get_dataset(c).code for c in args.datasets] if args.datasets else None
    if selected and args.datasets is None:
        codes = []  # only the corpus and/or the tokenizer
    result = download(
        dest,
        args.base_url or UNER_BASE_URL,
        codes,
        (args.tokenizer_url or TOKENIZER_URL) if want_tokenizer else None,
        log=print,
        corpus_url=(args.corpus_url or NLTK_BASE_URL) if args.corpus or not selected else None,
        progress=args.progress,
    )
    print(result.line(dest))
    return 0

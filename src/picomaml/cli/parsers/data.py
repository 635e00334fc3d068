"""The parser of ``picomaml data``: ``stats``, ``corpus``, ``download`` and ``names``."""

from __future__ import annotations

import argparse

from picomaml.cli.common import handler, int_arg, show_help
from picomaml.data.paths import ENV_VAR

#: The corpus files the name pools are counted in (relative to the data root).
NAMES_CORPUS = ("corpus/english-mini/train.jsonl.gz", "corpus/english-mini/valid.jsonl.gz")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its subcommands."""
    p = sub.add_parser("data", help="dataset statistics and download")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    p.set_defaults(func=show_help(p))

    st = dsub.add_parser(
        "stats", help="sentences, tokens and entity spans per type of a UNER dataset"
    )
    st.add_argument("dataset", help="dataset code (e.g. sk_snk, tl_trg) or 'all'")
    st.add_argument("--split", default=None, help="train, dev or test (default: every split)")
    st.add_argument("--json", action="store_true", help="print JSON instead of a table")
    st.set_defaults(func=handler("picomaml.cli.data:stats_command"))

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
    co.set_defaults(func=handler("picomaml.cli.data:corpus_command"))

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
    dl.set_defaults(func=handler("picomaml.cli.data:download_command"))
    _register_names(dsub)


def _register_names(dsub: argparse._SubParsersAction) -> None:
    nm = dsub.add_parser(
        "names",
        help="name pools of the name-substitution ablation (count, check)",
        description="Write the pool of person names frequent in the pretraining corpus, or "
        "count a pool's names in the corpus and the UNER sources.",
    )
    nsub = nm.add_subparsers(dest="names_command", metavar="SUBCOMMAND")
    nm.set_defaults(func=show_help(nm))
    corpus_help = (
        "pretraining corpus file(s); a relative path is looked up under the data root unless "
        "it starts with ./ or ../"
    )
    fr = nsub.add_parser(
        "frequent",
        help="write the pool of person names frequent in the pretraining corpus",
        description="Candidates: the first (given) and last (surname) words of the multi-word "
        "gold PER spans of a UNER source's training split; kept when tagged PER in most of "
        "their occurrences there, capitalised in the corpus, no case particle; the TOP most "
        "frequent in the corpus of each kind are written as a pool file.",
    )
    fr.add_argument("--out", required=True, help="pool file to write")
    fr.add_argument("--corpus", default=NAMES_CORPUS[0], help=corpus_help)
    fr.add_argument("--source", default="en_ewt", help="UNER source whose train split names")
    fr.add_argument("--top", type=int, default=30, help="names of each kind (default 30)")
    fr.add_argument("--min-count", type=int, default=20, help="least corpus count (default 20)")
    fr.set_defaults(func=handler("picomaml.cli.data:names_frequent_command"))
    ck = nsub.add_parser(
        "check",
        help="count a pool's names in the corpus and in every split of the UNER sources",
        description="Prints, per name, its occurrences (any case) in the corpus files and in "
        "the train/dev/test splits of the nine UNER sources. With --absent, any occurrence "
        "is an error (exit 2): how the unseen pool is checked.",
    )
    ck.add_argument("pool", help="pool file (kind<TAB>name[<TAB>count] lines)")
    ck.add_argument("--corpus", nargs="+", default=list(NAMES_CORPUS), help=corpus_help)
    ck.add_argument("--absent", action="store_true", help="fail if any name occurs anywhere")
    ck.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ck.set_defaults(func=handler("picomaml.cli.data:names_check_command"))

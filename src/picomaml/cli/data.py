"""CLI: ``picomaml data stats``, ``data corpus`` and ``data download``."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from picomaml.cli.common import data_root, explicit_data_dir, int_arg
from picomaml.data.paths import ENV_VAR

#: The corpus files the name pools are counted in (relative to the data root).
NAMES_CORPUS = ("corpus/english-mini/train.jsonl.gz", "corpus/english-mini/valid.jsonl.gz")


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
    _register_names(dsub)


def _register_names(dsub: argparse._SubParsersAction) -> None:
    nm = dsub.add_parser(
        "names",
        help="name pools of the name-substitution ablation (count, check)",
        description="Write the pool of person names frequent in the pretraining corpus, or "
        "count a pool's names in the corpus and the UNER sources.",
    )
    nsub = nm.add_subparsers(dest="names_command", metavar="SUBCOMMAND")
    nm.set_defaults(func=lambda args: _help(nm))
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
    fr.set_defaults(func=_names_frequent)
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
    ck.set_defaults(func=_names_check)


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


def _corpus_path(args: argparse.Namespace, given: str) -> Path:
    path = Path(given).expanduser()
    if not (path.is_absolute() or given.startswith(("./", "../"))):
        path = data_root(args) / path
    if not path.exists():
        from picomaml.errors import PicomamlError

        raise PicomamlError(f"corpus file not found: {path}")
    return path


def _names_frequent(args: argparse.Namespace) -> int:
    import hashlib

    from picomaml.data.corpus import read_documents
    from picomaml.data.names import format_pool, frequent_names, name_candidates, word_counts
    from picomaml.data.registry import get_dataset, load_split
    from picomaml.errors import PicomamlError
    from picomaml.fileio import write_text

    for flag, value in (("--top", args.top), ("--min-count", args.min_count)):
        if value < 1:
            raise PicomamlError(f"{flag}: expected an integer >= 1, got {value}")
    if get_dataset(args.source).role != "source":
        raise PicomamlError(f"--source {args.source}: expected a UNER source with a train split")
    corpus = _corpus_path(args, args.corpus)
    sentences, _ = load_split(args.source, "train", data_root(args))
    counts = word_counts(read_documents(corpus))
    entries = frequent_names(name_candidates(sentences), counts, args.top, args.min_count)
    kinds = {k: sum(1 for e in entries if e[0] == k) for k in ("given", "surname")}
    if not all(kinds.values()):
        raise PicomamlError(
            f"no {'given names' if not kinds['given'] else 'surnames'} passed the filters "
            f"(--min-count {args.min_count}); the pool would be unusable"
        )
    digest = hashlib.sha256(corpus.read_bytes()).hexdigest()
    header = [
        'picomaml name pool "frequent": person names frequent in the pretraining corpus.',
        f"Written by: picomaml data names frequent --source {args.source} --corpus "
        f"{args.corpus} --top {args.top} --min-count {args.min_count}",
        f"Corpus: {args.corpus} (sha256 {digest}).",
        f"Candidates: first (given) and last (surname) words of the multi-word gold PER spans "
        f"of {args.source} train; kept when tagged PER in >= 50% of their {args.source} "
        "occurrences, capitalised in >= 90% of their corpus occurrences, seen >= "
        f"{args.min_count} times, and no case particle; ranked by corpus count.",
        "Columns: kind, name, occurrences in the corpus (case kept).",
    ]
    write_text(args.out, format_pool(entries, header))
    print(f"{args.out}: {kinds['given']} given names, {kinds['surname']} surnames")
    return 0


def _names_check(args: argparse.Namespace) -> int:
    from collections import Counter

    from picomaml.data.corpus import read_documents
    from picomaml.data.names import casefolded, pool_occurrences, read_pool, word_counts
    from picomaml.data.registry import SOURCES, dataset_splits, load_split
    from picomaml.errors import PicomamlError

    pool = read_pool(args.pool, Path(args.pool).stem)
    root = data_root(args)
    corpus: Counter[str] = Counter()
    for given in args.corpus:
        corpus.update(word_counts(read_documents(_corpus_path(args, given))))
    uner: Counter[str] = Counter()
    for code in SOURCES:
        for split in dataset_splits(code):
            for s in load_split(code, split, root)[0]:
                uner.update(s.tokens)
    in_corpus = pool_occurrences(pool, casefolded(corpus))
    in_uner = pool_occurrences(pool, casefolded(uner))
    rows = [
        {"kind": k, "name": n, "corpus": c, "uner_sources": u}
        for (k, n, c), (_, _, u) in zip(in_corpus, in_uner, strict=True)
    ]
    if args.json:
        print(json.dumps({"pool": args.pool, "corpus": args.corpus, "names": rows}, indent=1))
    else:
        print(f"{'kind':<8} {'name':<24} {'corpus':>8} {'UNER sources':>13}")
        for r in rows:
            print(f"{r['kind']:<8} {r['name']:<24} {r['corpus']:>8} {r['uner_sources']:>13}")
    seen = [r["name"] for r in rows if r["corpus"] or r["uner_sources"]]
    if args.absent and seen:
        raise PicomamlError(
            f"{args.pool}: {len(seen)} name(s) occur in the corpus or the UNER sources: "
            + ", ".join(seen)
        )
    if args.absent:
        print(
            f"{args.pool}: all {len(rows)} names absent from {', '.join(args.corpus)} and "
            "from every split of the nine UNER sources"
        )
    return 0

"""What ``picomaml data`` does: ``stats``, ``corpus``, ``download`` and ``names`` (their
parser: :mod:`picomaml.cli.parsers.data`)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections import Counter
from pathlib import Path

from picomaml.cli.common import data_root, explicit_data_dir
from picomaml.data.corpus import default_cache_dir, load_rows, read_documents
from picomaml.data.download import TOKENIZER_URL, UNER_BASE_URL, download
from picomaml.data.names import (
    casefolded,
    format_pool,
    frequent_names,
    name_candidates,
    pool_occurrences,
    read_pool,
    word_counts,
)
from picomaml.data.paths import ENV_VAR, under_data_root
from picomaml.data.registry import SOURCES, dataset_splits, get_dataset, load_split
from picomaml.data.standin import NLTK_BASE_URL
from picomaml.data.stats import format_stats, split_stats
from picomaml.data.tokenizer import load_tokenizer
from picomaml.errors import PicomamlError
from picomaml.fileio import write_text


def stats_command(args: argparse.Namespace) -> int:
    """Sentences, tokens and spans per type of a dataset's splits (table or JSON)."""
    splits = [args.split] if args.split else list(dataset_splits(args.dataset))
    root = data_root(args)
    results = [split_stats(args.dataset, s, root) for s in splits]
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=1))
    else:
        print("\n".join(format_stats(r) for r in results))
    return 0


def corpus_command(args: argparse.Namespace) -> int:
    """Tokenize and pack a corpus into the token cache; print what it holds."""
    path = Path(args.path).expanduser()
    if under_data_root(args.path):
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


def download_command(args: argparse.Namespace) -> int:
    """Fetch the UNER files (and/or build the stand-in corpus) into the data root."""
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
    """A corpus file named on the command line (relative: under the data root); it must exist."""
    path = Path(given).expanduser()
    if under_data_root(given):
        path = data_root(args) / path
    if not path.exists():
        raise PicomamlError(f"corpus file not found: {path}")
    return path


def names_frequent_command(args: argparse.Namespace) -> int:
    """Write the pool of person names frequent in the pretraining corpus."""
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


def names_check_command(args: argparse.Namespace) -> int:
    """Count a pool's names in the corpus and the UNER sources (``--absent``: none may occur)."""
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

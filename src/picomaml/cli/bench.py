"""What ``picomaml bench`` does: each subcommand turns its flags into the typed arguments of a
benchmark in :mod:`picomaml.bench` (parser: :mod:`picomaml.cli.parsers.bench`)."""

from __future__ import annotations

import argparse

from picomaml.bench import meta as meta_bench
from picomaml.bench import ner as ner_bench
from picomaml.bench import pretrain as pretrain_bench
from picomaml.bench import tag as tag_bench
from picomaml.cli.common import data_root


def pretrain_command(args: argparse.Namespace) -> int:
    """``bench pretrain``; without a data root the bench uses a synthetic token pool (timings
    do not depend on token identities)."""
    pretrain_bench.main(
        size=args.size,
        out=args.out,
        data_root=data_root(args, required=False),
        device=args.device,
        ways=args.ways,
        seq_len=args.seq_len,
        warmup=args.warmup,
        iters=args.iters,
        peak=args.peak_tflops,
        compile=args.compile,
        compile_backend=args.compile_backend,
        ar_loss_impl=args.ar_loss,
        memory=args.memory,
        vs_pico_train=args.vs_pico_train,
        vs_batch=args.vs_batch,
        vs_seq_len=args.vs_seq_len,
        vs_repeats=args.vs_repeats,
    )
    return 0


def meta_command(args: argparse.Namespace) -> int:
    """``bench meta``: one table row per variant, every curve to ``--out``."""
    settings = meta_bench.MetaBenchSettings(
        ways=args.ways,
        shots=args.shots,
        queries=args.queries,
        dim=args.dim,
        snr=args.snr,
        shared=args.shared,
        episodes=args.episodes,
        seed=args.seed,
    )
    meta_bench.main(settings, args.variants, args.out)
    return 0


def ner_command(args: argparse.Namespace) -> int:
    """``bench ner``: the head-cache benchmark reads sentences; the CRF one needs no data."""
    settings = ner_bench.NerBenchSettings(
        quick=args.quick, iters=args.iters, data_root=data_root(args, required=False)
    )
    return ner_bench.main(settings, args.out)


def tag_command(args: argparse.Namespace) -> int:
    """``bench tag``: a fine-tuning run (``--run``) or a random model of ``--size``."""
    tag_bench.main(
        run_dir=args.run,
        size=args.size,
        device=args.device,
        n_lines=args.lines,
        long_words=args.long_words,
        seed=args.seed,
        out=args.out,
        data_root=data_root(args, required=False),
    )
    return 0

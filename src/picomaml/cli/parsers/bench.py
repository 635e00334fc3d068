"""The parser of ``picomaml bench``: ``pretrain``, ``meta``, ``ner`` and ``tag``."""

from __future__ import annotations

import argparse

from picomaml.cli.common import handler, int_arg, show_help
from picomaml.config import MAX_SEED, SIZES


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command with its ``pretrain``, ``meta``, ``ner`` and ``tag``
    subcommands."""
    parser = sub.add_parser("bench", help="speed benchmarks (JSON reports)")
    which = parser.add_subparsers(dest="bench", metavar="BENCH")
    parser.set_defaults(func=show_help(parser))
    _add_pretrain(which)
    _add_meta(which)
    _add_ner(which)
    _add_tag(which)


def _add_pretrain(which: argparse._SubParsersAction) -> None:
    """``bench pretrain``: AR vs MAML micro-batch throughput."""
    p = which.add_parser(
        "pretrain",
        help="AR vs first-order MAML micro-batch throughput at equal token counts",
    )
    p.add_argument("--size", default="tiny", choices=list(SIZES))
    p.add_argument("--out", default=None, help="write the JSON report here")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    p.add_argument(
        "--ways",
        type=int_arg("--ways", 2),
        default=None,
        help="episode ways (default 32 on CUDA, 8 on CPU)",
    )
    p.add_argument(
        "--seq-len", type=int_arg("--seq-len", 1), default=2048, help="AR row length (default 2048)"
    )
    p.add_argument(
        "--warmup",
        type=int_arg("--warmup", 0),
        default=None,
        help="untimed iterations per branch (2 CUDA, 1 CPU)",
    )
    p.add_argument(
        "--iters",
        type=int_arg("--iters", 1),
        default=None,
        help="timed iterations per branch (5 CUDA, 3 CPU)",
    )
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="device peak (TFLOP/s) for the MFU; default: the bf16 data-sheet peak of known GPUs",
    )
    p.add_argument(
        "--compile",
        default="auto",
        choices=["auto", "off", "on", "both"],
        help="measure eager and/or compiled blocks (auto: both on CUDA, eager on CPU)",
    )
    p.add_argument(
        "--compile-backend",
        default="inductor",
        help="torch.compile backend of the compiled mode (default inductor; eager: tracing only)",
    )
    p.add_argument(
        "--ar-loss",
        default="chunked",
        choices=["chunked", "full"],
        help="AR loss: chunked (the trainer's) or full (whole logits, the old path)",
    )
    p.add_argument(
        "--no-memory",
        dest="memory",
        action="store_false",
        help="skip the peak-memory measurement (on CPU it runs a fresh process per figure)",
    )
    p.add_argument(
        "--vs-pico-train",
        default=None,
        metavar="SRC",
        help="pico-train source checkout: also time its decoder's AR step in this process",
    )
    p.add_argument(
        "--vs-batch",
        type=int_arg("--vs-batch", 1),
        default=None,
        help="rows for --vs-pico-train (default: AR rows)",
    )
    p.add_argument(
        "--vs-seq-len",
        type=int_arg("--vs-seq-len", 1),
        default=None,
        help="tokens per row for --vs-pico-train (default: --seq-len)",
    )
    p.add_argument(
        "--vs-repeats",
        type=int_arg("--vs-repeats", 1),
        default=5,
        help="interleaved timed repeats per side for --vs-pico-train (default 5)",
    )
    p.set_defaults(func=handler("picomaml.cli.bench:pretrain_command"))


def _add_meta(which: argparse._SubParsersAction) -> None:
    """``bench meta``: head-only meta-training on synthetic features."""
    m = which.add_parser(
        "meta",
        help="does the MAML episode learn? head-only meta-training on synthetic features",
        description="Meta-train a fresh SMLMT head on synthetic, informative features (each "
        "word a random direction plus noise, optionally a direction shared by every window) "
        "and report the held-out query loss and accuracy before and after, per episode "
        "configuration (docs/pretraining.md).",
    )
    m.add_argument(
        "--variants",
        nargs="+",
        default=None,
        help="named configurations (default: all of picomaml.pretrain.synthetic.VARIANTS)",
    )
    m.add_argument("--ways", type=int_arg("--ways", 2), default=32)
    m.add_argument("--shots", type=int_arg("--shots", 1), default=4)
    m.add_argument("--queries", type=int_arg("--queries", 1), default=4)
    m.add_argument(
        "--dim", type=int_arg("--dim", 1), default=96, help="feature width (tiny's d_model)"
    )
    m.add_argument("--snr", type=float, default=0.2, help="class signal / noise variance")
    m.add_argument("--shared", type=float, default=0.0, help="weight of a shared direction")
    m.add_argument("--episodes", type=int_arg("--episodes", 1), default=1000, help="outer episodes")
    m.add_argument("--seed", type=int_arg("--seed", 0, MAX_SEED), default=0)
    m.add_argument("--out", default=None, help="write every curve as JSON here")
    m.set_defaults(func=handler("picomaml.cli.bench:meta_command"))


def _add_ner(which: argparse._SubParsersAction) -> None:
    """``bench ner``: the CRF and the cached-feature head training."""
    n = which.add_parser("ner", help="NER benchmarks (CRF, cached-feature head training)")
    n.add_argument("--out", default=None, help="write the JSON report here")
    n.add_argument("--quick", action="store_true", help="smaller sizes for a fast check")
    n.add_argument("--iters", type=int_arg("--iters", 1), default=None, help="timed iterations")
    n.set_defaults(func=handler("picomaml.cli.bench:ner_command"))


def _add_tag(which: argparse._SubParsersAction) -> None:
    """``bench tag``: tokens per second of ``picomaml tag``."""
    t = which.add_parser(
        "tag",
        help="tokens per second of `picomaml tag` (streamed lines, one long line, Viterbi)",
        description="Tag seeded synthetic text and report words and subword tokens per second "
        "for many short lines, for one long line, and for the Viterbi decoder alone. Without "
        "--run the model is a random backbone of --size with a random CRF head.",
    )
    t.add_argument("--run", default=None, metavar="RUN_DIR", help="a fine-tuning run to time")
    t.add_argument("--size", default="tiny", choices=list(SIZES), help="random model tier")
    t.add_argument("--device", default="cpu", help="auto, cpu or cuda[:N]")
    t.add_argument("--lines", type=int_arg("--lines", 1), default=2000, help="short lines")
    t.add_argument(
        "--long-words",
        type=int_arg("--long-words", 2),
        default=20_000,
        help="words of the long line",
    )
    t.add_argument("--seed", type=int_arg("--seed", 0, MAX_SEED), default=0)
    t.add_argument("--out", default=None, help="write the JSON report here")
    t.set_defaults(func=handler("picomaml.cli.bench:tag_command"))

"""``picomaml bench tag``: tokens per second of ``picomaml tag`` (a benchmark, not a test).

Three figures, each on seeded synthetic text so any machine can rerun them:

* ``stream``: many short lines through :func:`picomaml.ner.tag_text.tag_stream` (what
  ``picomaml tag < FILE`` does, without the terminal output);
* ``long_line``: one line of ``long_words`` words (windowed features, one Viterbi pass);
* ``viterbi``: the CRF decoder alone on a ``[1, long_words, 7]`` emission tensor.

Tokens are words (what ``tag`` tags); subword tokens (what the backbone reads) are given
too. Without ``--run`` the model is a seeded, randomly initialised backbone of ``--size``
with a random CRF head: the speed does not depend on what the weights learned.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import torch

from picomaml.bench.ner import environment
from picomaml.data.align import align_sentences
from picomaml.data.labels import LABELS
from picomaml.data.tokenizer import load_tokenizer
from picomaml.fileio import write_json
from picomaml.model import PicoDecoder, config_for
from picomaml.ner.config import FinetuneConfig
from picomaml.ner.evaluate import LoadedRun, load_run
from picomaml.ner.head import build_tagger, resolve_device
from picomaml.ner.tag_text import format_result, split_words, tag_stream

#: Words the synthetic text is drawn from (Tagalog and Cebuano, names, punctuation).
_TEXT = (
    "Pumunta si Maria sa Cebu kahapon at nakita niya ang dagat . Si Juan dela Cruz ay "
    "nagtrabaho sa Maynila , Davao ug Iloilo . Miadto siya sa merkado sa Lungsod sa "
    "Sugbo uban sa iyang amahan , ug mipalit sila og isda . Ang Pangulo ng Pilipinas"
)
WORDS = tuple(_TEXT.split())


def synthetic_lines(n_lines: int, seed: int, low: int = 5, high: int = 30) -> list[str]:
    """``n_lines`` seeded lines of ``low`` to ``high`` words from :data:`WORDS`."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(low, high))) for _ in range(n_lines)]


def random_run(size: str, device: str, seed: int, data_root: Path | None) -> LoadedRun:
    """A seeded random backbone of tier ``size`` with a random CRF head, ready to tag."""
    torch.manual_seed(seed)
    dev = resolve_device(device)
    model = PicoDecoder(config_for(size)).to(dev).eval()
    tagger = build_tagger(int(model.config.d_model), False).to(dev).eval()
    cfg = FinetuneConfig(backbone=f"random {size}", device=device)
    window = int(model.config.max_seq_len)
    return LoadedRun(
        Path("."), cfg, {}, model, tagger, load_tokenizer(data_root), window, cfg.feature_batch_size
    )


def _subwords(loaded: LoadedRun, lines: list[str]) -> int:
    sentences = [split_words(line) for line in lines]
    return sum(len(a.input_ids) for a in align_sentences(loaded.tokenizer, sentences))


def _timed_stream(loaded: LoadedRun, lines: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    words = 0
    for part in tag_stream(loaded, lines):
        format_result(part, as_json=False)
        words += sum(len(s.words) for s in part.sentences)
    return time.perf_counter() - start, words


def bench_tag(
    loaded: LoadedRun, n_lines: int = 2000, long_words: int = 20_000, seed: int = 0
) -> dict[str, Any]:
    """The three figures of the module docstring, in seconds and tokens per second."""
    lines = synthetic_lines(n_lines, seed)
    long_line = " ".join(random.Random(seed + 1).choices(WORDS, k=long_words))
    _timed_stream(loaded, lines[:20])  # warm-up: first calls allocate and tune kernels
    out: dict[str, Any] = {"n_lines": n_lines, "long_words": long_words, "seed": seed}
    for name, text in (("stream", lines), ("long_line", [long_line])):
        seconds, words = _timed_stream(loaded, text)
        subwords = _subwords(loaded, text)
        out[name] = {
            "seconds": seconds,
            "words": words,
            "subword_tokens": subwords,
            "words_per_s": words / seconds,
            "subword_tokens_per_s": subwords / seconds,
        }
    device = next(loaded.tagger.parameters()).device
    emissions = torch.randn(
        1, long_words, len(LABELS), generator=torch.Generator().manual_seed(seed)
    )
    emissions = emissions.to(device)
    mask = torch.ones(1, long_words, dtype=torch.bool, device=device)
    start = time.perf_counter()
    loaded.tagger.crf.viterbi(emissions, mask)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    out["viterbi"] = {"seconds": seconds, "words": long_words, "words_per_s": long_words / seconds}
    return out


def main(
    run_dir: str | None,
    size: str,
    device: str,
    n_lines: int,
    long_words: int,
    seed: int,
    out: str | None,
    data_root: Path | None,
) -> dict[str, Any]:
    """Run :func:`bench_tag` on ``run_dir`` (or a random ``size`` model), print a summary and
    write the JSON report to ``out`` when given."""
    torch.manual_seed(seed)
    if run_dir:
        loaded = load_run(run_dir, device=device, data_root=data_root)
    else:
        loaded = random_run(size, device, seed, data_root)
    report = {
        "env": environment(),
        "model": run_dir or f"random {size} backbone + random CRF head",
        "window": loaded.window,
        **bench_tag(loaded, n_lines, long_words, seed),
    }
    for name in ("stream", "long_line"):
        r = report[name]
        print(
            f"tag {name}: {r['words']:,} words ({r['subword_tokens']:,} subword tokens) in "
            f"{r['seconds']:.2f}s: {r['words_per_s']:,.0f} words/s, "
            f"{r['subword_tokens_per_s']:,.0f} subword tokens/s"
        )
    v = report["viterbi"]
    print(f"tag viterbi: {v['words']:,} words in {v['seconds']:.3f}s: {v['words_per_s']:,.0f}/s")
    if out:
        write_json(out, report)
        print(f"wrote {out}")
    return report

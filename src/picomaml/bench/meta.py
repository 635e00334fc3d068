"""``picomaml bench meta``: does the MAML episode learn? Head-only meta-training on synthetic,
informative features (:mod:`picomaml.pretrain.synthetic`), one row per named configuration.

Not a speed benchmark: it reports the held-out query loss and accuracy before and after
meta-training, next to ln N (docs/pretraining.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from picomaml.errors import PicomamlError
from picomaml.fileio import write_json
from picomaml.pretrain.config import MetaSection
from picomaml.pretrain.synthetic import VARIANTS, SyntheticTask, compare_variants, summary_line


@dataclass(frozen=True)
class MetaBenchSettings:
    """The episode shape and the synthetic task of ``picomaml bench meta``."""

    ways: int = 32
    shots: int = 4
    queries: int = 4
    #: Feature width (tiny's ``d_model``).
    dim: int = 96
    #: Class signal over noise variance.
    snr: float = 0.2
    #: Weight of a direction shared by every window (imitates collapsed features).
    shared: float = 0.0
    #: Outer (meta-training) episodes.
    episodes: int = 1000
    seed: int = 0


def check_variants(names: list[str] | None) -> list[str]:
    """``names`` (default: every one of :data:`~picomaml.pretrain.synthetic.VARIANTS`); an
    unknown name is the one-line error listing the known ones."""
    names = list(names or VARIANTS)
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        raise PicomamlError(
            f"bench meta: unknown variant(s) {', '.join(unknown)}; expected {', '.join(VARIANTS)}"
        )
    return names


def main(
    settings: MetaBenchSettings, variants: list[str] | None = None, out: str | Path | None = None
) -> dict[str, Any]:
    """Meta-train each variant, printing one table row as it finishes; write every curve as
    JSON to ``out`` when given. Returns the results by variant."""
    names = check_variants(variants)
    torch.set_num_threads(1)
    s = settings
    meta = MetaSection(
        enabled=True, ways=s.ways, shots=s.shots, queries=s.queries, min_word_count=8
    )
    task = SyntheticTask(d=s.dim, snr=s.snr, shared=s.shared, episodes=s.episodes, seed=s.seed)
    print(
        f"| variant ({s.ways}-way {s.shots}-shot, d={s.dim}, SNR {s.snr:g}, shared "
        f"{s.shared:g}, {s.episodes} episodes, seed {s.seed}) | held-out loss start | "
        "end | accuracy start | end | ln N |"
    )
    print("|---|---|---|---|---|---|")
    results: dict[str, Any] = {}
    for name in names:
        results.update(compare_variants(meta, task, [name]))
        print(summary_line(name, results[name]), flush=True)
    if out:
        write_json(out, results)
        print(f"wrote {out}")
    return results

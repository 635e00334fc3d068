"""One cell of an experiment grid: a fine-tune + evaluate job and the folder it writes.

Its own module because both the grid runner (:mod:`picomaml.study.grid`) and the cells the
ablations add (:mod:`picomaml.study.ablations`) build cells, and the runner uses the
ablations: with ``Cell`` here neither imports the other in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    """One fine-tune + evaluate job. ``step`` is None for the backbone's final weights;
    ``target``/``k``/``draw`` place a few-shot cell (``picomaml.study.ablations``)."""

    kind: str  # "main", "sweep", or an ablation's: "balanced", "fewshot"
    variant: str
    size: str
    regime: str
    source: str
    seed: int
    backbone: str
    step: int | None = None
    target: str | None = None
    k: int | None = None
    draw: int | None = None

    @property
    def cell_id(self) -> str:
        """Directory name; stable across reruns and shards."""
        base = f"{self.variant}-{self.size}-{self.regime}-{self.source}-s{self.seed}"
        if self.kind == "sweep":
            return f"sweep-{base}-step{self.step:06d}"
        if self.kind == "balanced":
            return f"balanced-{base}"
        if self.kind == "fewshot":
            if not self.k:
                return f"fewshot-{base}-k00"
            return f"fewshot-{base}-{self.target}-k{self.k:02d}-d{self.draw}"
        return base

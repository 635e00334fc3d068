"""The 18 UNER v1 datasets used by the paper, by code, and how to load their splits.

Roles: ``source`` (train/dev/test; fine-tuning sources), ``pud`` (Parallel UD, test only)
and ``target`` (the zero-shot Tagalog and Cebuano test sets). The pseudo-dataset ``all``
is the nine sources concatenated in :data:`SOURCES` order, for every split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from picomaml.data.paths import missing_data_message
from picomaml.data.uner import ReadReport, Sentence, read_iob2
from picomaml.errors import PicomamlError

Role = Literal["source", "pud", "target"]
UNER_SUBDIR = "uner"
ALL = "all"


@dataclass(frozen=True)
class Dataset:
    """One UNER dataset: where its files live and what the study uses it for."""

    code: str
    language: str
    folder: str
    role: Role
    splits: tuple[str, ...]
    branch: str = "master"
    """Git branch of the dataset's UniversalNER repository (for ``picomaml data download``)."""

    def filename(self, split: str) -> str:
        """File name of ``split`` as UNER publishes it, e.g. ``sk_snk-ud-train.iob2``."""
        return f"{self.code}-ud-{split}.iob2"

    def path(self, split: str, data_root: Path) -> Path:
        """Path of ``split`` under the resolved ``data_root`` (the split must exist here)."""
        _check_split(self, split)
        return Path(data_root) / UNER_SUBDIR / self.folder / self.filename(split)


_TRAIN_DEV_TEST = ("train", "dev", "test")
_TEST = ("test",)


def _make(code: str, language: str, folder: str, role: Role, branch: str = "master") -> Dataset:
    splits = _TRAIN_DEV_TEST if role == "source" else _TEST
    return Dataset(code, language, folder, role, splits, branch)


DATASETS: dict[str, Dataset] = {
    d.code: d
    for d in (
        _make("da_ddt", "Danish", "UNER_Danish-DDT", "source", "main"),
        _make("en_ewt", "English", "UNER_English-EWT", "source"),
        _make("hr_set", "Croatian", "UNER_Croatian-SET", "source", "main"),
        _make("pt_bosque", "Portuguese", "UNER_Portuguese-Bosque", "source"),
        _make("sk_snk", "Slovak", "UNER_Slovak-SNK", "source"),
        _make("sr_set", "Serbian", "UNER_Serbian-SET", "source", "main"),
        _make("sv_talbanken", "Swedish", "UNER_Swedish-Talbanken", "source"),
        _make("zh_gsd", "Chinese (traditional)", "UNER_Chinese-GSD", "source"),
        _make("zh_gsdsimp", "Chinese (simplified)", "UNER_Chinese-GSDSIMP", "source"),
        _make("de_pud", "German", "UNER_German-PUD", "pud"),
        _make("en_pud", "English", "UNER_English-PUD", "pud"),
        _make("pt_pud", "Portuguese", "UNER_Portuguese-PUD", "pud"),
        _make("ru_pud", "Russian", "UNER_Russian-PUD", "pud"),
        _make("sv_pud", "Swedish", "UNER_Swedish-PUD", "pud"),
        _make("zh_pud", "Chinese", "UNER_Chinese-PUD", "pud"),
        _make("tl_trg", "Tagalog", "UNER_Tagalog-TRG", "target"),
        _make("tl_ugnayan", "Tagalog", "UNER_Tagalog-Ugnayan", "target"),
        _make("ceb_gja", "Cebuano", "UNER_Cebuano-GJA", "target"),
    )
}

SOURCES: tuple[str, ...] = tuple(c for c, d in DATASETS.items() if d.role == "source")
PUD: tuple[str, ...] = tuple(c for c, d in DATASETS.items() if d.role == "pud")
TARGETS: tuple[str, ...] = tuple(c for c, d in DATASETS.items() if d.role == "target")
CODES: tuple[str, ...] = (*DATASETS, ALL)


def get_dataset(code: str) -> Dataset:
    """The registry entry of ``code``; an unknown code lists the valid ones."""
    try:
        return DATASETS[code]
    except KeyError:
        raise PicomamlError(f"unknown dataset {code!r}; valid codes: {', '.join(CODES)}") from None


def dataset_splits(code: str) -> tuple[str, ...]:
    """Splits available for ``code`` (``all`` has the sources' train/dev/test)."""
    return _TRAIN_DEV_TEST if code == ALL else get_dataset(code).splits


def _check_split(ds: Dataset, split: str) -> None:
    if split not in ds.splits:
        raise PicomamlError(
            f"dataset {ds.code} has no split {split!r}; available: {', '.join(ds.splits)}"
        )


def load_split(code: str, split: str, data_root: Path) -> tuple[list[Sentence], ReadReport]:
    """Sentences of one split under ``data_root`` (resolved by the caller, see
    :func:`picomaml.data.paths.resolve_data_dir`) and the reader's report; ``all``
    concatenates the sources."""
    if code == ALL:
        if split not in _TRAIN_DEV_TEST:
            raise PicomamlError(
                f"dataset all has no split {split!r}; available: {', '.join(_TRAIN_DEV_TEST)}"
            )
        sentences: list[Sentence] = []
        report = ReadReport()
        for src in SOURCES:
            part, rep = load_split(src, split, data_root)
            sentences.extend(part)
            report = report.merge(rep)
        return sentences, report
    ds = get_dataset(code)
    path = ds.path(split, data_root)
    if not path.is_file():
        root = path.parents[2]
        raise PicomamlError(
            missing_data_message(f"{ds.code} {split} file {path}", root, f" --datasets {ds.code}")
        )
    return read_iob2(path)

"""Balanced sampling, extra training sentences and derived test sets, through the real
fine-tuning and evaluation on a tiny random backbone and the fixture root (seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from picomaml.config import load_config
from picomaml.data.registry import load_split
from picomaml.errors import PicomamlError
from picomaml.ner.config import FinetuneConfig
from picomaml.ner.evaluate import evaluate_run
from picomaml.ner.finetune import finetune
from picomaml.ner.train_data import training_sentences
from picomaml.study.derived import format_iob2

TYPES = ("PER", "LOC", "ORG")
COMMON = ["source=sk_snk", "epochs=2", "batch_size=4", "device=cpu", "max_dev_sentences=6"]


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from picomaml.model import PicoConfig, PicoDecoder, save_pico

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("backbone") / "pico"
    config = PicoConfig(d_model=48, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64)
    save_pico(PicoDecoder(config), folder)
    return folder


def _run(backbone: Path, out: Path, root: Path, *extra: str) -> dict:
    cfg = load_config(FinetuneConfig, None, [f"backbone={backbone}", *COMMON, *extra])
    finetune(cfg, out, data_root=root, log=None)
    return json.loads((out / "run.json").read_text())


def test_balanced_run_records_counts_and_keeps_the_updates(tmp_path, backbone, fixture_data_root):
    natural = _run(backbone, tmp_path / "nat", fixture_data_root)
    balanced = _run(backbone, tmp_path / "bal", fixture_data_root, "sampling=balanced")
    assert not (tmp_path / "nat" / "sampling.json").exists()
    record = json.loads((tmp_path / "bal" / "sampling.json").read_text())
    assert record["before"]["sentences"] == record["after"]["sentences"] == 14

    def spread(counts: dict) -> int:
        return max(counts[t] for t in TYPES) - min(counts[t] for t in TYPES)

    assert spread(record["after"]) < spread(record["before"])
    assert balanced["steps"] == natural["steps"]  # same optimiser updates as natural
    assert balanced["sampling"] == "balanced" and natural["sampling"] == "natural"
    assert balanced["data"]["train"]["sampling"] == "balanced"


def test_extra_train_adds_sentences_and_reuses_the_cached_source(
    tmp_path, backbone, fixture_data_root
):
    target, _ = load_split("tl_trg", "test", fixture_data_root)
    cache = tmp_path / "cache"
    runs = []
    for i, part in enumerate((target[:2], target[2:5])):
        extra = tmp_path / f"extra{i}.iob2"
        extra.write_text(format_iob2(part), encoding="utf-8")
        runs.append(
            _run(
                backbone,
                tmp_path / f"run{i}",
                fixture_data_root,
                "regime=head",
                f"extra_train={extra}",
                f"feature_cache_dir={cache}",
            )
        )
    info = runs[1]["data"]["train"]["extra_train"]
    assert info["sent_ids"] == [s.sent_id for s in target[2:5]]
    assert info["sentences"] == 3 and len(info["sha256"]) == 64
    assert runs[0]["steps"] == 2 * -(-(14 + 2) // 4)  # 14 source + 2 extra, batches of 4
    # One cache file for the source part and one for dev, shared by both runs; the extra
    # sentences are never cached.
    assert len(list(cache.glob("*.pt"))) == 2
    with pytest.raises(PicomamlError, match="extra_train: file not found"):
        _run(backbone, tmp_path / "bad", fixture_data_root, f"extra_train={tmp_path / 'no'}")


def test_training_sentences_rejects_an_unknown_mode():
    with pytest.raises(PicomamlError, match="sampling: expected"):
        training_sentences([], "uniform", 0)


def test_derived_sets_are_scored_under_their_own_key(tmp_path, backbone, fixture_data_root):
    _run(backbone, tmp_path / "run", fixture_data_root, "epochs=1")
    sentences, _ = load_split("tl_trg", "test", fixture_data_root)
    derived = tmp_path / "half.iob2"
    derived.write_text(format_iob2(sentences[:4]), encoding="utf-8")
    results = evaluate_run(
        tmp_path / "run",
        data_root=fixture_data_root,
        datasets=[],
        derived={"tl_trg.eval-half": derived},
        log=None,
    )
    data = json.loads(results.read_text())["datasets"]
    assert list(data) == ["tl_trg.eval-half"]
    entry = data["tl_trg.eval-half"]
    assert entry["n_sentences"] == 4 and entry["derived"]["file"] == str(derived)
    assert (tmp_path / "run" / "predictions" / "tl_trg.eval-half.iob2").is_file()
    with pytest.raises(PicomamlError, match="derived test set 'tl_trg'"):
        evaluate_run(tmp_path / "run", data_root=fixture_data_root, derived={"tl_trg": derived})

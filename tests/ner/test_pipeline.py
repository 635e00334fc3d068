"""End to end: fine-tune (head and full), evaluate, tag, on a tiny backbone and the fixture root.

The backbone is a seeded random 2-layer d=48 Pico decoder with a 64-subword window, so the
numbers are meaningless but every code path (windowing, caching, early stopping, files)
runs in a few seconds on the committed fixture data (tests/fixtures: 14 train and 6 dev
sentences for sk_snk, the dev split with a 90-word sentence; 8 test sentences per target).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from picomaml.cli.main import main as cli_main
from picomaml.config import load_config
from picomaml.errors import PicomamlError
from picomaml.layout import BACKBONE_DIR, PICO_CONFIG, PICO_HF_FILES
from picomaml.ner.config import FinetuneConfig
from picomaml.ner.evaluate import evaluate_run, load_run
from picomaml.ner.finetune import dev_scores, finetune
from picomaml.ner.head import decode_features, ids_to_tags
from picomaml.ner.tag_text import tag_lines
from tests.fixtures import make_fixtures

EVAL_SETS = ["tl_trg", "tl_ugnayan"]
#: Fewer than the fixture's 14 sk_snk train sentences, so the limit is exercised.
TRAIN_LIMIT = 12
DEV_LIMIT = make_fixtures.N_SENTENCES["dev"]
COMMON = [
    "source=sk_snk",
    f"max_train_sentences={TRAIN_LIMIT}",
    f"max_dev_sentences={DEV_LIMIT}",
    "batch_size=4",
    "log_every=2",
    "device=cpu",
]


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from picomaml.model import PicoConfig, PicoDecoder, save_pico

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("backbone") / "pico"
    config = PicoConfig(d_model=48, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64)
    save_pico(PicoDecoder(config), folder)
    return folder


def _cfg(backbone: Path, *extra: str) -> FinetuneConfig:
    return load_config(FinetuneConfig, None, [f"backbone={backbone}", *COMMON, *extra])


@pytest.fixture(scope="module")
def data_root(fixture_data_root: Path) -> Path:
    """Every test here passes the fixture root explicitly (never the default data root)."""
    return fixture_data_root


@pytest.fixture(scope="module")
def head_run(backbone: Path, data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "head"
    # A large head learning rate: dev F1 reaches its peak within a few steps, then falls, and
    # patience ends the run before the epochs do (checked in the early-stopping test).
    cfg = _cfg(backbone, "regime=head", "epochs=8", "eval_every=2", "patience=3", "lr.head=2.0")
    finetune(cfg, out, data_root=data_root, log=None)
    evaluate_run(out, datasets=EVAL_SETS, data_root=data_root, n_resamples=200, log=None)
    return out


def _read_log(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines()]


def test_head_run_writes_the_design_layout(head_run: Path) -> None:
    for name in ("finetune.yaml", "run.json", "train_log.jsonl", "model/crf_head.safetensors"):
        assert (head_run / name).is_file(), name
    assert not (head_run / "model" / "backbone").exists()
    run = json.loads((head_run / "run.json").read_text())
    for key in ("backbone", "backbone_config", "source", "regime", "seed", "variant", "size"):
        assert key in run
    assert run["regime"] == "head" and run["source"] == "sk_snk"
    train_info = run["data"]["train"]
    assert train_info["n_sentences"] == train_info["limit"] == TRAIN_LIMIT
    assert train_info["n_sentences_available"] == make_fixtures.N_SENTENCES["train"]
    log = _read_log(head_run)
    train = [r for r in log if r["kind"] == "train"]
    dev = [r for r in log if r["kind"] == "dev"]
    assert train and all(set(r) == {"kind", "step", "epoch", "loss"} for r in train)
    assert [r["step"] for r in train] == list(range(2, 2 * len(train) + 1, 2))
    assert dev and all({"f1", "precision", "recall", "step", "epoch"} <= set(r) for r in dev)


def test_results_schema_predictions_and_confidence(head_run: Path) -> None:
    results = json.loads((head_run / "results.json").read_text())
    assert results["run"]["regime"] == "head"
    assert set(results["datasets"]) == set(EVAL_SETS)
    for code, entry in results["datasets"].items():
        assert entry["n_sentences"] == make_fixtures.N_SENTENCES["test"]  # every sentence
        assert entry["n_gold_entities"] == entry["default"]["micro"]["support"] > 0
        for mode in ("default", "strict"):
            micro = entry[mode]["micro"]
            assert all(0.0 <= micro[k] <= 1.0 for k in ("precision", "recall", "f1"))
            assert {"PER", "LOC", "ORG"} <= set(entry[mode]["per_type"])
        boot = entry["bootstrap"]
        assert boot["n_resamples"] == 200 and boot["seed"] == 0
        lo, hi = boot["f1_ci95"]
        assert 0.0 <= lo <= hi <= 1.0
        blocks = (head_run / "predictions" / f"{code}.iob2").read_text().split("\n\n")
        assert len([b for b in blocks if b.strip()]) == entry["n_sentences"]
        rows = [
            json.loads(x)
            for x in (head_run / "confidence" / f"{code}.jsonl").read_text().split("\n")
            if x
        ]
        assert len(rows) == entry["n_sentences"]
        for row in rows:
            assert len(row["tokens"]) == len(row["gold"]) == len(row["pred"]) == len(row["p_gold"])
            assert all(0.0 <= p <= 1.0 for p in row["p_gold"])


def test_early_stopping_restores_the_best_state(head_run: Path, data_root: Path) -> None:
    from picomaml.ner.head import load_sentences

    run = json.loads((head_run / "run.json").read_text())
    dev_log = [r for r in _read_log(head_run) if r["kind"] == "dev"]
    best = max(r["f1"] for r in dev_log)
    first_best = next(r for r in dev_log if r["f1"] == best)
    assert run["best_dev_f1"] == best and run["best_step"] == first_best["step"]
    # This seed's run peaks early, then falls, and stops on patience: the last state is worse
    # than the best, so "restored" is really tested.
    assert run["stopped_early"] and dev_log[-1]["f1"] < best
    # Re-score the saved model on the same dev slice: it must be the best logged state.
    loaded = load_run(head_run, device="cpu", data_root=data_root)
    dev, _ = load_sentences("sk_snk", "dev", data_root, DEV_LIMIT)
    feats = loaded.features([s.tokens for s in dev])
    pred = ids_to_tags(decode_features(loaded.tagger, feats))
    assert dev_scores([s.tags for s in dev], pred)["f1"] == pytest.approx(best, abs=1e-12)


def test_same_seed_same_results(backbone: Path, data_root: Path, tmp_path: Path) -> None:
    numbers = []
    for name in ("a", "b"):
        out = tmp_path / name
        finetune(_cfg(backbone, "epochs=1", "lr.head=0.05"), out, data_root=data_root, log=None)
        evaluate_run(out, datasets=["tl_trg"], data_root=data_root, n_resamples=50, log=None)
        numbers.append(
            (
                json.loads((out / "results.json").read_text())["datasets"],
                [r for r in _read_log(out)],
                (out / "model" / "crf_head.safetensors").read_bytes(),
            )
        )
    assert numbers[0] == numbers[1]


def test_full_regime_saves_and_uses_its_backbone(
    backbone: Path, data_root: Path, tmp_path: Path
) -> None:
    from picomaml.model import load_pico

    out = tmp_path / "full"
    cfg = _cfg(backbone, "regime=full", "epochs=1", "lr.full=0.001", "max_train_sentences=8")
    finetune(cfg, out, data_root=data_root, log=None)
    saved = load_pico(out / "model" / "backbone")
    original = load_pico(backbone)
    changed = [
        k for k, v in saved.state_dict().items() if not torch.equal(v, original.state_dict()[k])
    ]
    assert changed, "the full regime must update backbone weights"
    # the saved backbone is a transformers folder too (trust_remote_code=True)
    config = json.loads((out / BACKBONE_DIR / PICO_CONFIG).read_text())
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_picomaml.PicoDecoderHF"
    assert all((out / BACKBONE_DIR / name).is_file() for name in PICO_HF_FILES)
    evaluate_run(out, datasets=["tl_trg"], data_root=data_root, n_resamples=20, log=None)
    assert json.loads((out / "results.json").read_text())["run"]["regime"] == "full"


def test_tag_long_sentence_tags_every_word(head_run: Path, data_root: Path) -> None:
    loaded = load_run(head_run, device="cpu", data_root=data_root)
    words = " ".join(f"Pumunta si Maria{i} sa Cebu ," for i in range(60))
    result = tag_lines(loaded, ["Pumunta si Maria sa Cebu.", "   ", words])
    assert result.skipped_lines == [2]
    assert [s.line for s in result.sentences] == [1, 3]
    long = result.sentences[1]
    assert len(long.words) == 360 and len(long.tags) == 360
    assert all(t in loaded_labels() for t in long.tags)


def loaded_labels() -> set[str]:
    from picomaml.data.labels import LABELS

    return set(LABELS)


def test_tag_cli_text_json_and_empty(
    head_run: Path, data_root: Path, capsys: pytest.CaptureFixture
) -> None:
    tag = ["--data-dir", str(data_root), "tag", str(head_run)]
    assert cli_main([*tag, "Pumunta si Maria sa Cebu."]) == 0
    out = capsys.readouterr().out
    assert "Maria" in out and "entities:" in out
    assert cli_main([*tag, "Pumunta si Maria sa Cebu.", "Salamat", "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["words"] for r in rows] == [
        ["Pumunta", "si", "Maria", "sa", "Cebu", "."],
        ["Salamat"],
    ]
    assert all(len(r["tags"]) == len(r["words"]) for r in rows)
    # Text after an option is still text (argparse alone would reject it).
    assert cli_main([*tag, "--json", "Salamat po", "Si Juan"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["words"] for r in rows] == [["Salamat", "po"], ["Si", "Juan"]]
    with pytest.raises(SystemExit):
        cli_main([*tag, "--json", "Salamat", "--bogus"])
    capsys.readouterr()
    assert cli_main([*tag, ""]) == 2
    assert "no text to tag" in capsys.readouterr().err


def test_evaluate_run_dir_missing_files(data_root: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(PicomamlError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "run.json").write_text("{}")
    with pytest.raises(PicomamlError, match="missing finetune.yaml.*crf_head"):
        load_run(tmp_path / "partial")
    assert cli_main(["--data-dir", str(data_root), "evaluate", str(tmp_path / "partial")]) == 2
    assert "is missing" in capsys.readouterr().err


def test_finetune_refuses_to_overwrite_a_finished_run(
    head_run: Path, backbone: Path, data_root: Path
) -> None:
    with pytest.raises(PicomamlError, match="already holds a finished"):
        finetune(_cfg(backbone), head_run, data_root=data_root, log=None)


def test_backbone_of_another_size_is_an_error(
    backbone: Path, data_root: Path, tmp_path: Path
) -> None:
    with pytest.raises(PicomamlError, match="config says size: tiny.*d_model 48"):
        finetune(_cfg(backbone, "size=tiny"), tmp_path / "x", data_root=data_root, log=None)
    assert not (tmp_path / "x").exists()


def test_cli_finetune_and_evaluate(backbone: Path, data_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cli"
    args = ["--data-dir", str(data_root), "finetune", "--backbone", str(backbone)]
    args += ["--source", "sk_snk", "--regime", "head"]
    args += ["--out", str(out), "--config", "configs/finetune/demo.yaml"]
    args += ["max_train_sentences=8", f"max_dev_sentences={DEV_LIMIT}", "epochs=1", "window=32"]
    assert cli_main(args) == 0
    assert capsys.readouterr().out.strip() == str(out)
    cfg = load_config(FinetuneConfig, out / "finetune.yaml")
    assert cfg.window == 32 and cfg.lr.head == 1.0e-2 and cfg.backbone == str(backbone)
    evaluate = ["--data-dir", str(data_root), "evaluate", str(out), "--datasets", "ceb_gja"]
    assert cli_main([*evaluate, "--n-resamples", "10"]) == 0
    assert set(json.loads((out / "results.json").read_text())["datasets"]) == {"ceb_gja"}
    assert cli_main(args) == 2  # a finished run is not overwritten without --force
    assert "already holds" in capsys.readouterr().err
    assert cli_main([*args, "--force"]) == 0
    assert not (out / "results.json").exists() and not (out / "predictions").exists()
    bad = [
        "--data-dir",
        str(data_root),
        "finetune",
        "--backbone",
        str(backbone),
        "--source",
        "xx_yy",
        "--out",
        str(tmp_path / "b"),
    ]
    assert cli_main(bad) == 2
    assert "xx_yy" in capsys.readouterr().err and not (tmp_path / "b").exists()

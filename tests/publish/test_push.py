"""``picomaml push``: the staged folder, its model card, and the round trip through the
loopback fake Hub (real ``huggingface_hub`` client, legacy LFS upload) and back via ``hf:``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from picomaml.cli.main import main
from picomaml.errors import PicomamlError
from picomaml.fileio import write_json
from picomaml.layout import PICO_HF_FILES
from picomaml.model import PicoConfig, PicoDecoder, load_pico, save_pico
from picomaml.model.hub import fetch_checkpoint
from picomaml.publish.push import push

pytest.importorskip("huggingface_hub", reason="the [hub] extra (huggingface_hub) is needed")


def _results(run: Path) -> dict:
    """A results.json in evaluate's schema with distinct numbers per dataset."""
    datasets = {}
    for i, code in enumerate(["tl_trg", "tl_ugnayan", "ceb_gja", "sk_snk"]):
        f1 = 0.1 + 0.1 * i
        datasets[code] = {
            "n_sentences": 10 + i,
            "n_gold_entities": 20 + i,
            "default": {"micro": {"precision": f1, "recall": f1, "f1": f1, "support": 20 + i}},
            "strict": {"micro": {"precision": f1, "recall": f1, "f1": f1, "support": 20 + i}},
            "bootstrap": {
                "n_resamples": 100,
                "seed": 0,
                "mode": "default",
                "f1_ci95": [f1 - 0.05, f1 + 0.05],
            },
        }
    results = {"run": json.loads((run / "run.json").read_text()), "datasets": datasets}
    write_json(run / "results.json", results)
    return results


@pytest.fixture
def ner_run(tiny_ner_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(tiny_ner_run, run)
    _results(run)
    return run


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_dry_run_writes_a_loadable_folder_and_a_card_with_the_scores(ner_run, tmp_path, capsys):
    out = tmp_path / "stage"
    assert main(["push", str(ner_run), "--repo", "me/tiny-ner", "--dry-run", str(out)]) == 0
    assert "nothing uploaded" in capsys.readouterr().out
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"config.json", "model.safetensors", "README.md", *PICO_HF_FILES} <= names
    assert {"ner/crf_head.safetensors", "ner/run.json", "ner/results.json"} <= names
    card = (out / "README.md").read_text()
    meta = _front_matter(card)
    assert meta["language"] == ["sk", "tl", "ceb"] and meta["license"] == "apache-2.0"
    assert "universalner/universal_ner" in meta["datasets"] and "ner" in meta["tags"]
    # every score and interval of results.json, zero-shot targets first
    assert "| tl_trg | yes | 10.0 | [5.0, 15.0] | 10 | 20 |" in card
    assert "| ceb_gja | yes | 30.0 | [25.0, 35.0] | 12 | 22 |" in card
    assert "| sk_snk | no | 40.0 | [35.0, 45.0] | 13 | 23 |" in card
    assert card.index("tl_trg |") < card.index("sk_snk |")
    assert "max_train_sentences: 16" in card  # the training config
    assert "**Demo scale.**" in card and "**One seed.** One fine-tuning run (seed 0)" in card
    assert "Meta-Pretraining for Zero-Shot Cross-Lingual Named Entity Recognition" in card
    backbone = json.loads((ner_run / "run.json").read_text())["backbone"]
    assert torch.equal(
        load_pico(out).embedding_proj.weight, load_pico(backbone).embedding_proj.weight
    )


def test_base_model_is_the_hub_repo_the_run_fine_tuned(ner_run, tmp_path):
    local = push(ner_run, "me/local", dry_run=tmp_path / "local")[0]
    assert "base_model" not in _front_matter((local.folder / "README.md").read_text())
    run = json.loads((ner_run / "run.json").read_text())
    commit = "0" * 40
    run["backbone_hub"] = {  # as finetune records it (HubCheckpoint.provenance)
        "reference": "hf:o/n",
        "repo": "o/n",
        "revision": None,
        "subfolder": None,
        "commit": commit,
        "pinned": f"hf:o/n@{commit}",
    }
    write_json(ner_run / "run.json", run)
    staged = push(ner_run, "me/from-hub", dry_run=tmp_path / "hub")[0]
    assert _front_matter((staged.folder / "README.md").read_text())["base_model"] == "o/n"


def test_backbone_card_names_the_pretraining_config_and_its_scale(tmp_path):
    run = tmp_path / "pre"
    folder = run / "checkpoints" / "step_2"
    save_pico(PicoDecoder(PicoConfig(d_model=24, n_layers=2, n_heads=4, n_kv_heads=2)), folder)
    (run / "checkpoints" / "latest").write_text("step_2\n")
    config = {"training": {"max_steps": 100, "seed": 7}, "meta": {"enabled": True}}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    staged, commit = push(run, "me/demo", dry_run=tmp_path / "stage")
    assert commit is None and staged.kind == "backbone"
    card = (staged.folder / "README.md").read_text()
    assert _front_matter(card)["tags"] == ["picomaml", "pico-decoder", "maml"]
    assert "set to 100 steps (the paper: 6,000)" in card and "step 2" in card
    assert "**One seed.** One pretraining run (seed 7)" in card
    assert (staged.folder / "picomaml" / "config.yaml").is_file()


@pytest.mark.parametrize(
    ("repo", "why"),
    [("noslash", "OWNER/NAME"), ("a/b/c", "OWNER/NAME"), ("o/bad--name", "invalid repository")],
)
def test_bad_repo_names_are_one_line_errors(ner_run, tmp_path, repo, why):
    with pytest.raises(PicomamlError, match=why):
        push(ner_run, repo, dry_run=tmp_path / "x")


def test_dry_run_refuses_a_non_empty_folder(ner_run, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(PicomamlError, match="is not empty"):
        push(ner_run, "me/x", dry_run=tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "x"


def test_push_and_read_back_through_hf_gives_the_same_weights(
    ner_run, fake_hub, hub_upload, capsys
):
    assert main(["push", str(ner_run), "--repo", "me/tiny-ner"]) == 0
    assert "pushed" in capsys.readouterr().out
    # the client asked for the LFS route for the weights, and the commit holds them
    assert any(path.endswith(".git/info/lfs/objects/batch") for _, path in fake_hub.requests)
    ckpt = fetch_checkpoint("hf:me/tiny-ner")
    backbone = json.loads((ner_run / "run.json").read_text())["backbone"]
    ours = load_file(str(Path(backbone) / "model.safetensors"))
    theirs = load_file(str(ckpt.folder / "model.safetensors"))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    tree = fake_hub.repos["me/tiny-ner"].commits[ckpt.commit]
    assert "README.md" in tree and "ner/crf_head.safetensors" in tree
    assert tree["ner/crf_head.safetensors"] == (ner_run / "model/crf_head.safetensors").read_bytes()
    # pushing again (repository exists) adds a commit instead of failing
    assert main(["push", str(ner_run), "--repo", "me/tiny-ner"]) == 0

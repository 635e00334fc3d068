"""Fine-tuning on published checkpoints (``--backbone hf:...``) against the fake Hub.

The repositories (:mod:`tests.fixtures.fakehub`) have the published layouts with small
models: Pico-MAML folders with vocabulary 50,281 and window 512, a pico-lm training branch
with the old ``pico`` naming. Data comes from the committed fixture root.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch

from picomaml.cli.main import main as cli_main
from picomaml.errors import PicomamlError
from picomaml.model import PicoDecoder, config_for, save_pico
from picomaml.model.backbone import check_size, resolve_backbone, tier_of
from picomaml.model.hub import parse_hub_ref
from picomaml.ner.config import FinetuneConfig, load_finetune_config
from picomaml.ner.evaluate import evaluate_run, load_run
from picomaml.ner.finetune import finetune
from tests.fixtures.fakehub import MAML, VANILLA, VANILLA_BRANCH, VOCAB, closed_port

COMMON = [
    "source=sk_snk",
    "max_train_sentences=12",
    "max_dev_sentences=8",
    "batch_size=4",
    "epochs=1",
    "window=64",
    "device=cpu",
]


def _cfg(backbone: str, *extra: str) -> FinetuneConfig:
    return load_finetune_config(None, [*COMMON, *extra], {"backbone": backbone})


def _run(tmp: Path, name: str) -> dict:
    return json.loads((tmp / name / "run.json").read_text())


def test_every_reference_form_fine_tunes_and_records_its_commit(
    fake_hub, hub_cache, fixture_data_root, tmp_path
):
    step_100 = f"hf:{MAML}/checkpoints/step_100"
    vanilla_1000 = fake_hub.vanilla_steps[1000]
    forms = {
        "folder": (step_100, fake_hub.maml_commit, 100, VOCAB),
        "branch": (f"hf:{MAML}@main/checkpoints/step_0", fake_hub.maml_commit, 0, VOCAB),
        "commit": (
            f"hf:{MAML}@{fake_hub.maml_commit}/checkpoints/step_1000",
            fake_hub.maml_commit,
            1000,
            VOCAB,
        ),
        "vanilla": (f"hf:{VANILLA}@{vanilla_1000}", vanilla_1000, None, 50304),
    }
    for name, (ref, commit, step, vocab) in forms.items():
        finetune(_cfg(ref), tmp_path / name, data_root=fixture_data_root, log=None)
        run = _run(tmp_path, name)
        assert run["backbone_requested"] == ref
        assert run["backbone_hub"]["commit"] == commit
        assert run["backbone_hub"]["pinned"] == str(parse_hub_ref(ref).at(commit))
        assert run["pretrain_step"] == step
        assert run["backbone_config"]["vocab_size"] == vocab  # from the checkpoint's config.json
        assert run["backbone_config"]["max_seq_len"] == 512
        assert Path(run["backbone"]).is_relative_to(hub_cache)
    # Only config.json and weights were ever requested: no code, tokenizer or optimizer state.
    names = {Path(p).name for p in fake_hub.fetched_files()}
    assert names == {"config.json", "model.safetensors"}
    assert not any("fabric_state" in p for _, p in fake_hub.requests)


def test_a_branch_resolves_to_its_tip_and_records_that_commit(fake_hub, hub_cache):
    resolved = resolve_backbone(f"hf:{VANILLA}@{VANILLA_BRANCH}")
    tip = fake_hub.repos[VANILLA].branches[VANILLA_BRANCH][-1]  # "Saving Fabric Checkpoint"
    assert resolved.hub["commit"] == tip != fake_hub.vanilla_steps[1000]
    assert resolved.step is None and resolved.run_dir is None and resolved.variant is None
    step_1000 = resolve_backbone(f"hf:{VANILLA}@{fake_hub.vanilla_steps[1000]}")
    weights = "model.safetensors"
    assert (resolved.folder / weights).read_bytes() == (step_1000.folder / weights).read_bytes()


def test_evaluate_refetches_a_recorded_commit_when_the_cache_is_gone(
    fake_hub, hub_cache, fixture_data_root, tmp_path
):
    out = tmp_path / "run"
    finetune(_cfg(f"hf:{MAML}/checkpoints/step_100"), out, data_root=fixture_data_root, log=None)
    shutil.rmtree(hub_cache)
    fake_hub.requests.clear()
    loaded = load_run(out, device="cpu", data_root=fixture_data_root)
    assert loaded.model.config.vocab_size == VOCAB
    assert {Path(p).name for p in fake_hub.fetched_files()} == {"config.json", "model.safetensors"}
    evaluate_run(out, datasets=["tl_trg"], data_root=fixture_data_root, n_resamples=20, log=None)
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["backbone_hub"]["commit"] == fake_hub.maml_commit


def test_offline_fine_tuning_from_the_cache(
    fake_hub, hub_cache, fixture_data_root, tmp_path, monkeypatch
):
    ref = f"hf:{MAML}/checkpoints/step_0"
    resolve_backbone(ref)  # download once
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    fake_hub.requests.clear()
    finetune(_cfg(ref), tmp_path / "off", data_root=fixture_data_root, log=None)
    assert fake_hub.requests == []
    assert _run(tmp_path, "off")["backbone_hub"]["commit"] == fake_hub.maml_commit


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("hf:nobody/nothing/checkpoints/step_0", "repository nobody/nothing not found on the Hub"),
        (f"hf:{MAML}/checkpoints/step_7000", "step 7000 does not exist there"),
        (f"hf:{MAML}/checkpoints/step_2000", "model.safetensors not found"),
        ("hf:nobody", "expected hf:OWNER/REPO"),
    ],
)
def test_cli_finetune_missing_repo_step_or_file_is_one_line_exit_2(
    fake_hub, hub_cache, fixture_data_root, tmp_path, capsys, reference, message
):
    argv = ["--data-dir", str(fixture_data_root), "finetune", "--backbone", reference]
    argv += ["--source", "sk_snk", "--regime", "head", "--out", str(tmp_path / "x")]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("picomaml: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()  # nothing written before the backbone was found


def test_cli_finetune_without_network_or_cache(
    hub_cache, fixture_data_root, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # the client's retry backoff
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    argv = ["--data-dir", str(fixture_data_root), "finetune", "--backbone"]
    argv += [f"hf:{MAML}/checkpoints/step_0", "--out", str(tmp_path / "x")]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Hub" in err and "not in the local cache" in err
    assert err.count("\n") == 1
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli_main(argv) == 2
    assert "HF_HUB_OFFLINE is set" in capsys.readouterr().err


def test_tier_ignores_the_vocabulary_and_the_tokenizer_must_fit(fixture_data_root, tmp_path):
    published_tiny = config_for("tiny", vocab_size=VOCAB, max_seq_len=64)
    assert tier_of(published_tiny) == "tiny" and tier_of(config_for("small")) == "small"
    check_size(published_tiny, "tiny", "here")  # no error: same tier, another vocabulary
    with pytest.raises(PicomamlError, match="d_model 96 .a small backbone has 384"):
        check_size(published_tiny, "small", "here")

    torch.manual_seed(0)
    folder = save_pico(PicoDecoder(published_tiny), tmp_path / "tiny50281")
    finetune(_cfg(str(folder), "size=tiny"), tmp_path / "ok", data_root=fixture_data_root, log=None)
    run = _run(tmp_path, "ok")
    assert run["size"] == "tiny" and run["backbone_hub"] is None

    short = save_pico(
        PicoDecoder(config_for("tiny", vocab_size=50000, max_seq_len=64)), tmp_path / "v"
    )
    with pytest.raises(
        PicomamlError, match="tokenizer has 50280 token ids but the backbone's vocab"
    ):
        finetune(_cfg(str(short)), tmp_path / "no", data_root=fixture_data_root, log=None)
    assert not (tmp_path / "no").exists()


# The fixture's valid file (9k tokens) is too small for the held-out share and the
# training frequency cap: every word, a wider cap.
SMALL_POOL = ("--words", "all", "--max-word-frequency", "0.05", "--documents", "any")


def test_probe_takes_a_hub_reference(fake_hub, hub_cache, fixture_data_root, tmp_path, capsys):
    """``picomaml probe`` resolves its backbone like fine-tuning does (a few tiny episodes)."""
    out = tmp_path / "probe.json"
    argv = ["--data-dir", str(fixture_data_root), "probe", f"hf:{MAML}/checkpoints/step_100"]
    argv += ["--out", str(out), "--episodes", "2", "--ways", "2", "--shots", "1"]
    argv += ["--queries", "1", "--window", "32", "--inner-steps", "1", *SMALL_POOL]
    assert cli_main(argv) == 0, capsys.readouterr().err
    entry = json.loads(out.read_text())["checkpoints"][0]
    # Named by the reference pinned to its commit, not by a machine's cache path.
    assert entry["backbone"] == f"hf:{MAML}@{fake_hub.maml_commit}/checkpoints/step_100"
    assert entry["step"] == 100


def _probe_argv(root, reference: str, *extra: str) -> list[str]:
    argv = ["--data-dir", str(root), "probe", reference, "--episodes", "2", "--ways", "2"]
    argv += ["--shots", "1", "--queries", "1", "--window", "32", "--inner-steps", "1"]
    return [*argv, *SMALL_POOL, *extra]


def test_probe_every_checkpoint_of_a_hub_training_branch(
    fake_hub, hub_cache, fixture_data_root, tmp_path, capsys
):
    """``--all-checkpoints`` on a Hub repository lists its steps (here the commits of a
    pico-lm training branch) and probes each; it needs --out (no run dir to write into)."""
    reference = f"hf:{VANILLA}@{VANILLA_BRANCH}"
    assert cli_main(_probe_argv(fixture_data_root, reference, "--all-checkpoints")) == 2
    assert "needs --out FILE" in capsys.readouterr().err
    out = tmp_path / "probe.json"
    argv = _probe_argv(fixture_data_root, reference, "--all-checkpoints", "--out", str(out))
    assert cli_main(argv) == 0, capsys.readouterr().err
    entries = json.loads(out.read_text())["checkpoints"]
    assert [e["step"] for e in entries] == sorted(fake_hub.vanilla_steps)
    assert [e["backbone"] for e in entries] == [
        f"hf:{VANILLA}@{fake_hub.vanilla_steps[step]}" for step in sorted(fake_hub.vanilla_steps)
    ]


def test_probe_every_checkpoint_stops_at_a_folder_without_weights(
    fake_hub, hub_cache, fixture_data_root, tmp_path, capsys
):
    """The MAML repository's step_2000 holds only config.json: one line naming it, exit 2."""
    argv = _probe_argv(fixture_data_root, f"hf:{MAML}/checkpoints", "--all-checkpoints")
    assert cli_main([*argv, "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert "step_2000" in err and "model.safetensors" in err

"""Hub backbone references (``hf:OWNER/REPO[@REVISION][/SUBFOLDER]``), offline.

A loopback server (:mod:`tests.fixtures.fakehub`) plays the Hub, so the real
``huggingface_hub`` client runs end to end: downloads land in a temporary ``HF_HUB_CACHE``
and every request is recorded. The repositories mimic the published layouts: Pico-MAML folders
``checkpoints/step_N/`` with code, tokenizer and ``fabric_state/`` beside the weights, and a
pico-lm training branch with one ``Saving HF Model -- Step N`` commit per checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from picomaml.cli.main import main
from picomaml.errors import PicomamlError
from picomaml.model import PicoConfig, check_vocab, load_pico, read_pico_config
from picomaml.model.hub import (
    HubRef,
    fetch_checkpoint,
    list_checkpoints,
    parse_hub_ref,
    steps_from_commits,
    steps_from_folders,
)
from picomaml.model.pico import Attention, rope_tables
from tests.fixtures.fakehub import (
    MAML,
    SMALL,
    VANILLA,
    VOCAB,
    closed_port,
    pico_weights,
    published_files,
)

# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "repo", "revision", "subfolder"),
    [
        ("hf:o/r", "o/r", None, ""),
        ("hf:o/r@dev", "o/r", "dev", ""),
        (f"hf:{MAML}/checkpoints/step_6000", MAML, None, "checkpoints/step_6000"),
        (f"hf:{MAML}@{'a' * 40}/checkpoints/step_0", MAML, "a" * 40, "checkpoints/step_0"),
        ("hf:o/r@refs%2Fpr%2F1/x", "o/r", "refs/pr/1", "x"),
        ("hf:o/r/checkpoints/", "o/r", None, "checkpoints"),
        (f"hf:{VANILLA}@pico-decoder-tiny-1", VANILLA, "pico-decoder-tiny-1", ""),
    ],
)
def test_parse_all_forms_and_round_trip(text, repo, revision, subfolder):
    ref = parse_hub_ref(text)
    assert (ref.repo_id, ref.revision, ref.subfolder) == (repo, revision, subfolder)
    assert parse_hub_ref(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("o/r", "does not start with 'hf:'"),
        ("hf:", "empty"),
        ("hf:repo", "no OWNER/REPO"),
        ("hf:o/r@", "empty revision"),
        ("hf:o/r@/x", "empty revision"),
        ("hf:o/r/../x", "invalid subfolder segment '..'"),
        ("hf:o/r//x", "invalid subfolder segment ''"),
        ("hf:-o/r", "invalid owner '-o'"),
        ("hf:o/r--x", "invalid repository name 'r--x'"),
        ("hf:o/r x", "whitespace"),
        ("hf:o/r/a@b", "invalid subfolder segment 'a@b'"),
        # hostile repository ids (issue 22, failure 3): never a path component
        ("hf:../r", "invalid owner '..'"),
        ("hf:o/..", "invalid repository name '..'"),
        ("hf:./r", "invalid owner '.'"),
        ("hf:o/a..b", "invalid repository name 'a..b'"),
        ("hf:/etc/passwd", "invalid owner ''"),
        ("hf:%2E%2E/r", "invalid owner '%2E%2E'"),
        ("hf:o/r%2F..%2Fx", "invalid repository name 'r%2F..%2Fx'"),
        ("hf:o\\..\\x/r", "invalid owner 'o\\\\..\\\\x'"),
        ("hf:o/r\x00", "invalid repository name 'r\\x00'"),
        ("hf:o/r\x1b", "invalid repository name 'r\\x1b'"),
    ],
)
def test_parse_errors_name_the_problem_and_the_form(text, why):
    with pytest.raises(PicomamlError, match="expected hf:OWNER/REPO") as err:
        parse_hub_ref(text)
    assert why in str(err.value) and "\n" not in str(err.value)


def test_step_listing_helpers_sort_numerically_and_keep_the_newest_commit():
    assert steps_from_folders(["step_1000", "step_100", "step_0", "latest", "step_x"]) == [
        (0, "step_0"),
        (100, "step_100"),
        (1000, "step_1000"),
    ]
    newest_first = [
        ("c3", "Saving HF Model -- Step 1000"),
        ("c2", "Saving Fabric Checkpoint -- Step 0"),
        ("c1b", "Saving HF Model -- Step 0"),
        ("c1a", "Saving HF Model -- Step 0"),
        ("c0", "initial commit"),
    ]
    assert steps_from_commits(newest_first) == [(0, "c1b"), (1000, "c3")]


# --- fetching --------------------------------------------------------------------------------


def test_fetch_downloads_only_config_and_weights_and_returns_the_commit(fake_hub, hub_cache):
    ckpt = fetch_checkpoint(f"hf:{MAML}/checkpoints/step_100")
    assert ckpt.commit == fake_hub.maml_commit
    assert sorted(p.name for p in ckpt.folder.iterdir()) == ["config.json", "model.safetensors"]
    assert ckpt.folder.is_relative_to(hub_cache)
    fetched = set(fake_hub.fetched_files())
    assert fetched == {"checkpoints/step_100/config.json", "checkpoints/step_100/model.safetensors"}
    assert not any("fabric_state" in path or "tokenizer" in path for _, path in fake_hub.requests)
    assert ckpt.provenance() == {
        "reference": f"hf:{MAML}/checkpoints/step_100",
        "repo": MAML,
        "revision": None,
        "subfolder": "checkpoints/step_100",
        "commit": fake_hub.maml_commit,
        "pinned": f"hf:{MAML}@{fake_hub.maml_commit}/checkpoints/step_100",
    }


def test_vocab_50281_checkpoint_loads_from_its_own_config_and_runs(fake_hub, hub_cache):
    ckpt = fetch_checkpoint(f"hf:{MAML}/checkpoints/step_1000")
    model = load_pico(ckpt.folder)
    cfg = model.config
    assert (cfg.vocab_size, cfg.max_seq_len, cfg.d_model, cfg.n_kv_heads) == (VOCAB, 512, 24, 2)
    expected = pico_weights(PicoConfig(vocab_size=VOCAB, **SMALL), "", 2)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    check_vocab(cfg, 50280, "olmo")  # every OLMo id fits; [MASK] 50280 is the last row
    ids = torch.tensor([[0, 17, 50279, 50280]])
    with torch.no_grad():
        logits = model(ids)
    assert logits.shape == (1, 4, VOCAB) and torch.isfinite(logits).all()
    with pytest.raises(PicomamlError, match="token id 50281 is outside .* vocabulary of 50281"):
        model.hidden_states(torch.tensor([[5, 50281]]))
    with pytest.raises(PicomamlError, match="ids 50281..50303 have no embedding"):
        check_vocab(cfg, 50304, "a padded tokenizer")


def test_revision_forms_resolve_to_the_same_commit(fake_hub, hub_cache):
    by_branch = fetch_checkpoint(f"hf:{MAML}@main/checkpoints/step_0")
    by_commit = fetch_checkpoint(f"hf:{MAML}@{fake_hub.maml_commit}/checkpoints/step_0")
    assert by_branch.commit == by_commit.commit == fake_hub.maml_commit
    assert by_branch.folder == by_commit.folder


def test_old_pico_naming_on_a_training_branch_loads(fake_hub, hub_cache):
    commit = fake_hub.vanilla_steps[1000]
    ckpt = fetch_checkpoint(f"hf:{VANILLA}@{commit}")
    assert ckpt.commit == commit
    assert read_pico_config(ckpt.folder).vocab_size == 50304
    model = load_pico(ckpt.folder)  # model_type "pico", tensors "pico.<name>"
    expected = pico_weights(PicoConfig(vocab_size=50304, **SMALL), "", 11)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    assert set(fake_hub.fetched_files()) == {"config.json", "model.safetensors"}


def test_offline_mode_serves_the_cache_without_any_request(fake_hub, hub_cache, monkeypatch):
    first = fetch_checkpoint(f"hf:{MAML}/checkpoints/step_0")
    fake_hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    again = fetch_checkpoint(f"hf:{MAML}/checkpoints/step_0")
    assert (again.folder, again.commit) == (first.folder, first.commit)
    assert fake_hub.requests == []
    load_pico(again.folder)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("hf:nobody/nothing/checkpoints/step_0", "repository nobody/nothing not found"),
        (f"hf:{MAML}/checkpoints/step_7000", "step 7000 does not exist there"),
        (f"hf:{MAML}@nope/checkpoints/step_0", "revision 'nope' not found"),
        (f"hf:{MAML}/checkpoints/step_2000", "model.safetensors not found"),
    ],
)
def test_missing_repo_step_revision_or_file_is_one_clear_line(
    fake_hub, hub_cache, reference, message
):
    with pytest.raises(PicomamlError, match=message) as err:
        fetch_checkpoint(reference)
    text = str(err.value)
    assert "\n" not in text and text.startswith(reference.split("/checkpoints")[0])
    if "step_7000" in reference:
        assert f"picomaml model list-checkpoints hf:{MAML}" in text


def test_no_network_and_no_cache(hub_cache, monkeypatch):
    # Without a cached copy the client retries with backoff (about 23 s): skip the sleeps.
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    with pytest.raises(PicomamlError, match="cannot reach the Hub .* not in the local cache"):
        fetch_checkpoint(f"hf:{MAML}/checkpoints/step_0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PicomamlError, match="not in the local Hugging Face cache .* unset"):
        fetch_checkpoint(f"hf:{MAML}/checkpoints/step_0")


def test_listing_without_network_is_one_line(hub_cache, monkeypatch, capsys):
    # huggingface_hub >= 1 raises its HTTP client's errors, which are no OSError.
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    assert main(["model", "list-checkpoints", f"hf:{MAML}/checkpoints"]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith("picomaml: error: hf:") and "cannot reach the Hub" in err
    assert "folder checkpoints" in err and "check the network connection" in err


def test_default_cache_dir_in_a_fresh_interpreter(tmp_path):
    """With no HF_* variable set, the library default; ``huggingface_hub.constants`` is a lazy
    submodule, so this must work before anything else imported it (a fresh process)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "XDG_"))}
    env["HOME"] = str(tmp_path)
    code = "from picomaml.model.hub import cache_dir; print(cache_dir())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(tmp_path / ".cache" / "huggingface" / "hub")


def test_missing_huggingface_hub_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import now raises ImportError
    with pytest.raises(PicomamlError, match=r"need huggingface_hub: pip install -e '\.\[hub\]'"):
        fetch_checkpoint(f"hf:{MAML}/checkpoints/step_0")


# --- listing and the CLI ---------------------------------------------------------------------


def test_list_checkpoint_folders(fake_hub, hub_cache):
    for reference in (f"hf:{MAML}", f"hf:{MAML}/checkpoints"):
        steps = list_checkpoints(reference)
        assert [s.step for s in steps] == [0, 100, 1000, 2000]
        assert str(steps[1].ref) == f"hf:{MAML}/checkpoints/step_100"
    assert fake_hub.fetched_files() == []  # listing downloads nothing


def test_list_checkpoint_commits_of_a_training_branch(fake_hub, hub_cache):
    steps = list_checkpoints(f"hf:{VANILLA}@pico-decoder-tiny-1")
    assert [(s.step, s.commit) for s in steps] == sorted(fake_hub.vanilla_steps.items())
    assert steps[0].ref == HubRef(VANILLA, fake_hub.vanilla_steps[0])


def test_cli_lists_checkpoints(fake_hub, hub_cache, capsys):
    assert main(["model", "list-checkpoints", f"hf:{MAML}/checkpoints", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["step"] for r in rows] == [0, 100, 1000, 2000]
    assert main(["model", "list-checkpoints", f"hf:{VANILLA}@pico-decoder-tiny-1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("2 checkpoints (steps 0..1000)")
    assert out[2].split() == ["1000", f"hf:{VANILLA}@{fake_hub.vanilla_steps[1000]}"]


def test_cli_fetch_then_offline(fake_hub, hub_cache, capsys, monkeypatch):
    ref = f"hf:{MAML}/checkpoints/step_0"
    assert main(["model", "fetch", ref, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["commit"] == fake_hub.maml_commit and info["config"]["vocab_size"] == VOCAB
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["model", "fetch", ref]) == 0
    assert fake_hub.maml_commit in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["model", "list-checkpoints", "hf:nobody/nothing"], "repository nobody/nothing not"),
        (["model", "list-checkpoints", f"hf:{MAML}/nope"], "folder nope not found"),
        (["model", "list-checkpoints", f"hf:{VANILLA}"], "branches: main, pico-decoder-tiny-1"),
        (["model", "fetch", f"hf:{MAML}/checkpoints/step_7000"], "step 7000 does not exist"),
        (["model", "fetch", "hf:nobody"], "expected hf:OWNER/REPO"),
    ],
)
def test_cli_errors_exit_2_with_one_line(fake_hub, hub_cache, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("picomaml: error: ") and message in err
    assert err.count("\n") == 1


def test_cli_list_offline_is_refused(hub_cache, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["model", "list-checkpoints", f"hf:{MAML}"]) == 2
    assert "HF_HUB_OFFLINE is set" in capsys.readouterr().err


# --- the published model code ----------------------------------------------------------------


def test_attention_matches_the_published_formulation():
    """pico_decoder.py (pico-train / pico-maml-train) calls SDPA with an additive -inf
    upper-triangular mask and ``enable_gqa``; ours uses ``is_causal`` and
    ``repeat_interleave``. Same outputs."""
    torch.manual_seed(0)
    cfg = PicoConfig(**SMALL)
    attn = Attention(cfg)
    x = torch.randn(2, 7, cfg.d_model)
    cos, sin = rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
    ours = attn(x, cos[:7], sin[:7])

    from picomaml.model.pico import apply_rope

    q = attn.q_proj(x).view(2, 7, cfg.n_heads, cfg.head_dim)
    k = attn.k_proj(x).view(2, 7, cfg.n_kv_heads, cfg.head_dim)
    v = attn.v_proj(x).view(2, 7, cfg.n_kv_heads, cfg.head_dim)
    q, k = apply_rope(q, cos[:7], sin[:7]), apply_rope(k, cos[:7], sin[:7])
    mask = torch.triu(torch.full((7, 7), float("-inf")), diagonal=1)
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask, enable_gqa=True
    )
    theirs = attn.o_proj(out.transpose(1, 2).reshape(2, 7, -1))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_mixed_prefixes_in_one_file_are_refused(tmp_path):
    cfg = PicoConfig(**SMALL)
    weights = pico_weights(cfg, "pico_decoder.", 0)
    name = "pico_decoder.output_norm.weight"
    weights["pico." + name.removeprefix("pico_decoder.")] = weights[name].clone()
    save_file(weights, str(tmp_path / "model.safetensors"))
    files = published_files(cfg, "pico_decoder", "pico_decoder.", 0, tmp_path)
    (tmp_path / "config.json").write_bytes(files["config.json"])
    with pytest.raises(PicomamlError, match="tensor names clash once the prefixes"):
        load_pico(tmp_path)


# --- hostile references (issue 22, failure 3) -------------------------------------------------

HOSTILE = "evil/repo"
TRAVERSAL = "../../../victim"  # from CACHE/models--evil--repo/refs/ to the cache's parent


@pytest.mark.parametrize(
    "revision",
    [
        "..%2F..%2F..%2Fvictim",
        "%2E%2E%2F%2E%2E%2F%2E%2E%2Fvictim",
        "%2Fetc%2Fpasswd",
        "..%5C..%5Cvictim",
        "%252E%252E%252Fvictim",
        "%00",
        "main%00",
        "a%0Ab",
        "%ff",
        "refs%2F..%2F..%2Fx",
        ".hidden",
        "x.lock",
    ],
)
def test_hostile_revisions_are_refused_before_any_path(revision, fake_hub, hub_cache, tmp_path):
    """A hostile endpoint serves any revision; the reference is refused before a request."""
    victim = tmp_path / "victim"
    victim.write_text("untouched", encoding="utf-8")
    fake_hub.commit(HOSTILE, {"config.json": b"{}"}, "evil", branch=TRAVERSAL)
    with pytest.raises(PicomamlError, match="expected hf:OWNER/REPO") as err:
        fetch_checkpoint(f"hf:{HOSTILE}@{revision}")
    assert "\n" not in str(err.value)
    assert victim.read_text(encoding="utf-8") == "untouched"
    assert fake_hub.requests == []
    assert not hub_cache.exists() or all(
        p.resolve().is_relative_to(hub_cache.resolve()) for p in hub_cache.rglob("*")
    )


def test_hostile_values_from_the_server_are_refused_too():
    """References built from a server's answer (e.g. commit ids of a listing) are checked."""
    with pytest.raises(PicomamlError, match="path segment"):
        parse_hub_ref(f"hf:{MAML}").at(TRAVERSAL)
    with pytest.raises(PicomamlError, match="invalid character"):
        parse_hub_ref(f"hf:{MAML}").child("a\x00b")
    assert parse_hub_ref(f"hf:{MAML}@refs%2Fpr%2F3").revision == "refs/pr/3"


def test_a_cache_folder_that_escapes_the_cache_is_refused_before_any_request(
    fake_hub, hub_cache, tmp_path
):
    """Valid references can still resolve outside the cache when a folder in it is a symlink
    (planted, or left by another tool): every planned path is resolved and checked first."""
    outside = tmp_path / "outside"
    outside.mkdir()
    hub_cache.mkdir()
    storage = hub_cache / f"models--{MAML.replace('/', '--')}"
    storage.symlink_to(outside, target_is_directory=True)
    reference = f"hf:{MAML}/checkpoints/step_0"
    with pytest.raises(PicomamlError, match="outside the Hub cache") as err:
        fetch_checkpoint(reference)
    text = str(err.value)
    assert text.startswith(f"{reference}: resolves to {storage}/refs/main") and "\n" not in text
    assert text.endswith(f"outside the Hub cache {hub_cache}")
    assert list(outside.rglob("*")) == [] and fake_hub.requests == []

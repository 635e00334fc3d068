"""HF-native Pico folders: ``transformers`` loads what ``save_pico`` and ``model export`` write
(``trust_remote_code=True``, safetensors only) and computes picomaml's logits."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from picomaml.cli.main import main
from picomaml.data.tokenizer import load_tokenizer
from picomaml.errors import PicomamlError
from picomaml.layout import PICO_HF_FILES, PICO_MODELING
from picomaml.model import PicoConfig, PicoDecoder, load_pico, save_pico
from picomaml.model.export import export
from picomaml.model.hf_files import modeling_source

transformers = pytest.importorskip(
    "transformers", reason="the [transformers] extra is needed (pip install -e '.[transformers]')"
)

CONFIG = PicoConfig(d_model=48, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64)
TEXT = "Pumunta si Maria sa Cebu noong 2019. Niño's café!"


def _folder(tmp_path: Path, config: PicoConfig = CONFIG, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    return save_pico(PicoDecoder(config), tmp_path / "m")


def _hf(folder: Path):
    return transformers.AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()


def _assert_same_logits(folder: Path, ids: list[int]) -> None:
    x = torch.tensor([ids])
    with torch.no_grad():
        ours = load_pico(folder).eval()(x)
        theirs = _hf(folder)(x).logits
    assert theirs.dtype == torch.float32 and theirs.shape == ours.shape
    assert torch.allclose(theirs, ours, atol=1e-5, rtol=0), (theirs - ours).abs().max()


def test_modeling_file_is_self_contained():
    """The shipped file imports only torch, transformers and the standard library."""
    tree = ast.parse(modeling_source())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    assert roots <= {"__future__", "torch", "transformers"}, roots


def test_auto_classes_load_and_match_picomaml(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    assert {p.name for p in folder.iterdir()} >= set(PICO_HF_FILES)
    assert (folder / PICO_MODELING).read_text() == modeling_source()  # one source
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "pico_decoder"
    assert config["architectures"] == ["PicoDecoderHF"]
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_picomaml.PicoDecoderHF"

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load called: loading must go through safetensors only")

    monkeypatch.setattr(torch, "load", no_pickle)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    ids = tokenizer(TEXT)["input_ids"]
    assert ids == load_tokenizer().encode(TEXT).ids  # same ids as picomaml, no BOS/EOS added
    _assert_same_logits(folder, ids)
    model = _hf(folder)
    assert model.config.vocab_size == CONFIG.vocab_size == 50304
    assert model.get_input_embeddings().weight.shape == (50304, 48)
    out = model.generate(torch.tensor([ids]), max_new_tokens=4, do_sample=False)
    assert out.shape == (1, len(ids) + 4) and out[0, : len(ids)].tolist() == ids
    again = model.generate(torch.tensor([ids]), max_new_tokens=4, do_sample=False)
    assert torch.equal(out, again)  # greedy
    with torch.no_grad():  # the last generated token is the argmax of picomaml's logits
        prefix = out[:, :-1]
        assert int(load_pico(folder)(prefix)[0, -1].argmax()) == int(out[0, -1])


def test_labels_loss_and_padding(tmp_path):
    model = _hf(_folder(tmp_path))
    ids = torch.tensor([[5, 6, 7, 8]])
    out = model(ids, labels=ids)
    want = torch.nn.functional.cross_entropy(out.logits[0, :-1], ids[0, 1:])
    assert torch.allclose(out.loss, want)
    right = model(torch.tensor([[5, 6, 1, 1]]), attention_mask=torch.tensor([[1, 1, 0, 0]]))
    assert torch.allclose(right.logits[0, :2], model(ids[:, :2]).logits[0], atol=1e-6)
    with pytest.raises(ValueError, match="left padding"):
        model(torch.tensor([[1, 5, 6]]), attention_mask=torch.tensor([[0, 1, 1]]))


def test_export_upgrades_an_old_folder_in_place(tmp_path, capsys):
    """A folder as picomaml wrote it before (config.json + weights only, vocabulary 50,281)."""
    published = PicoConfig(d_model=48, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=50281)
    folder = _folder(tmp_path, published)
    for name in PICO_HF_FILES:
        (folder / name).unlink()
    config = json.loads((folder / "config.json").read_text())
    del config["auto_map"]
    config["note"] = "kept"
    (folder / "config.json").write_text(json.dumps(config))
    weights = (folder / "model.safetensors").read_bytes()
    assert main(["model", "export", str(folder)]) == 0
    assert f"exported {folder}" in capsys.readouterr().out
    assert (folder / "model.safetensors").read_bytes() == weights  # untouched
    config = json.loads((folder / "config.json").read_text())
    assert config["note"] == "kept" and config["vocab_size"] == 50281
    assert _hf(folder).config.vocab_size == 50281
    _assert_same_logits(folder, [3, 50280, 17])  # [MASK] 50280 has an embedding


def test_export_renames_old_pico_tensors_and_walks_a_run_dir(tmp_path):
    run = tmp_path / "run"
    for step in (1, 2):
        torch.manual_seed(step)
        folder = save_pico(PicoDecoder(CONFIG), run / "checkpoints" / f"step_{step}")
    # pico-train's pre-2025 naming: model_type "pico", tensors "pico.<name>"
    state = load_file(str(folder / "model.safetensors"))
    save_file(
        {k.replace("pico_decoder.", "pico."): v for k, v in state.items()},
        str(folder / "model.safetensors"),
    )
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "pico"
    (folder / "config.json").write_text(json.dumps(config))
    done = export(run)
    assert [(f.name, rewritten) for f, rewritten in done] == [("step_1", False), ("step_2", True)]
    assert all(k.startswith("pico_decoder.") for k in load_file(str(folder / "model.safetensors")))
    _assert_same_logits(folder, [1, 2, 3])


def test_export_errors_are_one_line(tmp_path, capsys):
    assert main(["model", "export", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(PicomamlError, match="not a Pico folder"):
        export(tmp_path / "empty")
    head_run = tmp_path / "ft"
    head_run.mkdir()
    (head_run / "run.json").write_text("{}")
    with pytest.raises(PicomamlError, match="head-regime"):
        export(head_run)


def test_published_layout_still_loads_with_picomaml(tmp_path, fake_hub, hub_cache):
    """The hf: path is unchanged: a published folder (their config.json, no files of ours)."""
    from picomaml.model.hub import fetch_checkpoint

    ckpt = fetch_checkpoint("hf:davidafrica/pico-maml-decoder-tiny/checkpoints/step_100")
    assert sorted(p.name for p in ckpt.folder.iterdir()) == ["config.json", "model.safetensors"]
    assert load_pico(ckpt.folder).config.vocab_size == 50281
    copy = tmp_path / "copy"
    shutil.copytree(ckpt.folder, copy)
    export(copy)  # and it can be exported for transformers, vocabulary kept
    assert _hf(copy).config.vocab_size == 50281


@pytest.mark.needs_real_data
def test_a_make_demo_checkpoint_loads_with_transformers(tmp_path, data_dir):
    """The pretraining of ``make demo`` (configs/pretrain/demo-maml.yaml), one step."""
    config = Path(__file__).resolve().parents[2] / "configs" / "pretrain" / "demo-maml.yaml"
    run = tmp_path / "demo-maml"
    argv = ["pretrain", "--config", str(config), "--run-dir", str(run), "--stop-at-step", "1"]
    assert main([*argv, "--data-dir", str(data_dir)]) == 0
    folder = run / "checkpoints" / "step_1"
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    ids = tokenizer(TEXT)["input_ids"]
    assert ids == load_tokenizer().encode(TEXT).ids
    _assert_same_logits(folder, ids)

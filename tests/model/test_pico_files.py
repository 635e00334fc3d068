"""Pico checkpoints: the published Hugging Face layout, config round trips, bad folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from picomaml.errors import PicomamlError
from picomaml.layout import PICO_HF_FILES
from picomaml.model import PicoConfig, PicoDecoder, load_pico, read_pico_config, save_pico
from picomaml.model.pico_files import state_shapes

SMALL = PicoConfig(d_model=48, n_layers=2, vocab_size=512, max_seq_len=64)


def _model(config: PicoConfig = SMALL, seed: int = 0) -> PicoDecoder:
    torch.manual_seed(seed)
    return PicoDecoder(config).eval()


def _published_folder(folder: Path, model: PicoDecoder, dtype: torch.dtype) -> Path:
    """A folder as pico-train's PicoDecoderHF.save_pretrained writes it (extra keys included)."""
    folder.mkdir(parents=True)
    cfg = model.config
    (folder / "config.json").write_text(
        json.dumps(
            {
                "activation_hidden_dim": cfg.hidden_dim,
                "architectures": ["PicoDecoderHF"],
                "attention_n_heads": cfg.n_heads,
                "attention_n_kv_heads": cfg.n_kv_heads,
                "auto_map": {
                    "AutoConfig": "pico_decoder.PicoDecoderHFConfig",
                    "AutoModelForCausalLM": "pico_decoder.PicoDecoderHF",
                },
                "batch_size": 1024,
                "d_model": cfg.d_model,
                "max_seq_len": cfg.max_seq_len,
                "model_type": "pico_decoder",
                "n_layers": cfg.n_layers,
                "norm_eps": cfg.norm_eps,
                "position_emb_theta": cfg.rope_theta,
                "torch_dtype": "float32",
                "transformers_version": "4.48.3",
                "vocab_size": cfg.vocab_size,
            }
        )
    )
    tensors = {k: v.to(dtype) for k, v in model.state_dict(prefix="pico_decoder.").items()}
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_published_layout_loads_with_identical_logits(tmp_path: Path) -> None:
    model = _model()
    loaded = load_pico(_published_folder(tmp_path / "pub", model, torch.float32))
    ids = torch.randint(0, 512, (2, 11))
    assert loaded.config == SMALL
    assert torch.equal(loaded(ids), model(ids))


def test_bf16_weights_are_cast_to_float32(tmp_path: Path) -> None:
    model = _model()
    loaded = load_pico(_published_folder(tmp_path / "pub", model, torch.bfloat16))
    assert loaded.embedding_proj.weight.dtype == torch.float32
    expected = model.embedding_proj.weight.detach().to(torch.bfloat16).float()
    assert torch.equal(loaded.embedding_proj.weight, expected)


@pytest.mark.parametrize(
    "config",
    [
        SMALL,
        PicoConfig(d_model=32, n_layers=1, n_heads=4, n_kv_heads=1, vocab_size=100, max_seq_len=8),
        PicoConfig(
            d_model=24,
            n_layers=1,
            n_heads=2,
            n_kv_heads=2,
            vocab_size=64,
            max_seq_len=8,
            activation_hidden_dim=40,
            norm_eps=1e-5,
            rope_theta=500.0,
        ),
    ],
)
def test_config_round_trips_exactly(tmp_path: Path, config: PicoConfig) -> None:
    save_pico(_model(config), tmp_path / "m")
    assert read_pico_config(tmp_path / "m") == config
    assert load_pico(tmp_path / "m").config == config
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["activation_hidden_dim"] == config.hidden_dim  # pico-train needs the width
    assert meta["batch_size"] == 1024 and meta["architectures"] == ["PicoDecoderHF"]


def test_save_leaves_no_temporary_files(tmp_path: Path) -> None:
    save_pico(_model(), tmp_path / "m")
    save_pico(_model(seed=1), tmp_path / "m")  # overwrite in place
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted(
        ["config.json", "model.safetensors", *PICO_HF_FILES]
    )
    assert torch.equal(
        load_pico(tmp_path / "m").embedding_proj.weight, _model(seed=1).embedding_proj.weight
    )


def test_null_kv_heads_means_multi_head_attention(tmp_path: Path) -> None:
    folder = _published_folder(tmp_path / "pub", _model(), torch.float32)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["attention_n_kv_heads"] = None
    (folder / "config.json").write_text(json.dumps(cfg))
    assert read_pico_config(folder).n_kv_heads == SMALL.n_heads


def _edit_config(folder: Path, **changes: object) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    for key in [k for k, v in changes.items() if v is ...]:
        del cfg[key]
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"d_model": "48"}, "d_model must be a int"),
        ({"norm_eps": True}, "norm_eps must be a float"),
        ({"n_layers": ...}, "missing key.*n_layers"),
        ({"model_type": "llama"}, "model_type is 'llama'"),
        ({"attention_n_heads": 5}, "config.json: d_model=48 is not divisible"),
        # One case per validation rule: the config.json key is named, with what was expected.
        ({"d_model": -96}, "config.json: d_model must be a positive integer, got -96"),
        ({"n_layers": 0}, "config.json: n_layers must be a positive integer, got 0"),
        ({"attention_n_heads": 0}, "config.json: attention_n_heads must be a positive integer"),
        ({"attention_n_kv_heads": -4}, "attention_n_kv_heads must be a positive integer, got -4"),
        ({"vocab_size": 0}, "config.json: vocab_size must be a positive integer, got 0"),
        ({"max_seq_len": -1}, "config.json: max_seq_len must be a positive integer, got -1"),
        ({"activation_hidden_dim": 0}, "activation_hidden_dim must be a positive integer, got 0"),
        ({"norm_eps": 0.0}, "config.json: norm_eps must be a positive finite number, got 0.0"),
        ({"norm_eps": float("nan")}, "norm_eps must be a positive finite number, got nan"),
        ({"position_emb_theta": -1.0}, "position_emb_theta must be a positive finite number"),
        ({"position_emb_theta": float("inf")}, "position_emb_theta must be a positive finite"),
        (
            {"attention_n_heads": 12, "attention_n_kv_heads": 5},
            "config.json: attention_n_heads=12 is not divisible by attention_n_kv_heads=5",
        ),
        (
            {"d_model": 36, "attention_n_heads": 12, "activation_hidden_dim": None},
            "config.json: head width d_model / attention_n_heads = 3 must be even",
        ),
    ],
)
def test_bad_config_json_names_file_and_key(tmp_path: Path, changes: dict, message: str) -> None:
    save_pico(_model(), tmp_path / "m")
    _edit_config(tmp_path / "m", **changes)
    with pytest.raises(PicomamlError, match=message) as err:
        load_pico(tmp_path / "m")
    assert "\n" not in str(err.value)
    with pytest.raises(PicomamlError, match=message):
        read_pico_config(tmp_path / "m")


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"d_model": 0}, "d_model must be a positive integer, got 0"),
        ({"n_heads": 0}, "n_heads must be a positive integer, got 0"),
        ({"n_kv_heads": 0}, "n_kv_heads must be a positive integer, got 0"),
        ({"n_layers": -1}, "n_layers must be a positive integer, got -1"),
        ({"d_model": 96.0}, "d_model must be a positive integer, got 96.0"),
        ({"n_layers": True}, "n_layers must be a positive integer, got True"),
        ({"activation_hidden_dim": -384}, "activation_hidden_dim must be a positive integer"),
        ({"norm_eps": -1e-6}, "norm_eps must be a positive finite number, got -1e-06"),
        ({"rope_theta": 0}, "rope_theta must be a positive finite number, got 0"),
        ({"d_model": 100}, "d_model=100 is not divisible by n_heads=12"),
        ({"n_kv_heads": 5}, "n_heads=12 is not divisible by n_kv_heads=5"),
        ({"d_model": 36}, "head width d_model / n_heads = 3 must be even"),
    ],
)
def test_pico_config_checks_every_field(fields: dict, message: str) -> None:
    with pytest.raises(PicomamlError, match=message):
        PicoConfig(**fields)


def test_unparsable_files_are_clear_errors(tmp_path: Path) -> None:
    save_pico(_model(), tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(PicomamlError, match="cannot read safetensors"):
        load_pico(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(PicomamlError, match="no model.safetensors in"):
        load_pico(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(PicomamlError, match="not valid JSON"):
        load_pico(tmp_path / "m")
    with pytest.raises(PicomamlError, match="no config.json"):
        load_pico(tmp_path / "nowhere")


def test_missing_and_unexpected_tensors_are_named(tmp_path: Path) -> None:
    model = _model()
    folder = _published_folder(tmp_path / "pub", model, torch.float32)
    tensors = model.state_dict(prefix="pico_decoder.")
    del tensors["pico_decoder.layers.1.swiglu.w_2.weight"]
    tensors["pico_decoder.lm_head.weight"] = torch.zeros(1)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
    with pytest.raises(PicomamlError) as err:
        load_pico(folder)
    assert "missing: layers.1.swiglu.w_2.weight" in str(err.value)
    assert "unexpected: lm_head.weight" in str(err.value)


def test_unprefixed_state_dict_also_loads(tmp_path: Path) -> None:
    model = _model()
    folder = _published_folder(tmp_path / "pub", model, torch.float32)
    save_file(model.state_dict(), str(folder / "model.safetensors"))
    ids = torch.randint(0, 512, (1, 5))
    assert torch.equal(load_pico(folder)(ids), model(ids))


# --- issue 22: the config is checked against the weights before anything is allocated -----


@pytest.mark.parametrize(
    "changes,message",
    [
        (
            {"d_model": 8160},
            "embedding_proj.weight has shape (512, 48), config.json implies (512, 8160)",
        ),
        ({"vocab_size": 10_000_000}, "config.json implies (10000000, 48)"),
        ({"n_layers": 100_000_000}, "holds 21 tensors, but config.json says n_layers=100000000"),
        ({"n_layers": 40}, "missing: layers.10.attention.k_proj.weight"),
    ],
)
def test_huge_config_json_fails_in_one_line_before_allocation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changes: dict, message: str
) -> None:
    save_pico(_model(), tmp_path / "m")
    _edit_config(tmp_path / "m", **changes)
    built = []
    real_init = PicoDecoder.__init__

    def spy(self: PicoDecoder, config: PicoConfig) -> None:
        if config != SMALL:  # would allocate the config.json's model
            raise AssertionError(f"model allocated before the check: {config}")
        built.append(config)
        real_init(self, config)

    monkeypatch.setattr(PicoDecoder, "__init__", spy)
    with pytest.raises(PicomamlError) as err:
        load_pico(tmp_path / "m")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(tmp_path / "m" / "model.safetensors") in str(err.value)
    assert built == []


def test_state_shapes_are_those_of_the_model() -> None:
    for config in (SMALL, PicoConfig(d_model=64, n_layers=3, n_heads=8, n_kv_heads=2)):
        model = PicoDecoder(config)
        assert state_shapes(config) == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_max_seq_len_is_capped(tmp_path: Path) -> None:
    save_pico(_model(), tmp_path / "m")
    _edit_config(tmp_path / "m", max_seq_len=10**9)  # RoPE tables of 10**9 rows otherwise
    with pytest.raises(PicomamlError, match="max_seq_len must be at most 131,072, got 1000000000"):
        load_pico(tmp_path / "m")

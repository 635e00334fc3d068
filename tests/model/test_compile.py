"""torch.compile of the decoder: the setting, the names it leaves, eager equivalence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from picomaml.errors import PicomamlError
from picomaml.model import PicoConfig, PicoDecoder, load_pico, save_pico
from picomaml.model.compile import compile_blocks, maybe_compile, resolve_compile
from picomaml.model.loss import ar_loss
from picomaml.pretrain.config import load_pretrain_config


def _tiny_model() -> PicoDecoder:
    torch.manual_seed(0)
    cfg = PicoConfig(
        d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=512, max_seq_len=64
    )
    return PicoDecoder(cfg)


def test_resolve_compile_and_config_key() -> None:
    assert resolve_compile("auto", "cuda") is True
    assert resolve_compile("auto", torch.device("cpu")) is False
    assert resolve_compile(True, "cpu") is True and resolve_compile(False, "cuda") is False
    with pytest.raises(PicomamlError, match="runtime.compile"):
        resolve_compile("yes", "cpu")  # type: ignore[arg-type]
    assert load_pretrain_config(None).runtime.compile == "auto"
    assert load_pretrain_config(None, ["runtime.compile=true"]).runtime.compile is True
    assert load_pretrain_config(None, ["runtime.compile=false"]).runtime.compile is False
    with pytest.raises(PicomamlError, match="runtime.compile"):
        load_pretrain_config(None, ["runtime.compile=maybe"])


def test_compile_keeps_names_and_checkpoints_have_no_prefix(tmp_path: Path) -> None:
    model = _tiny_model()
    names = list(model.state_dict())
    assert maybe_compile(model, "auto", "cpu") is False  # eager on CPU under auto
    assert maybe_compile(model, True, "cpu") is True
    assert list(model.state_dict()) == names  # blocks compiled in place: same names
    with pytest.raises(PicomamlError, match="no transformer blocks"):
        compile_blocks(torch.nn.Linear(2, 2))

    wrapped = torch.compile(model)  # a whole-model wrapper prefixes _orig_mod. ...
    assert all(k.startswith("_orig_mod.") for k in wrapped.state_dict())
    folder = save_pico(wrapped, tmp_path / "m")  # ... which save_pico does not write
    from safetensors.torch import load_file

    assert sorted(load_file(folder / "model.safetensors")) == sorted(
        "pico_decoder." + n for n in names
    )
    loaded = load_pico(folder)
    for (n, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), n


@pytest.mark.slow
def test_compiled_and_eager_agree_after_three_adamw_steps(tmp_path: Path) -> None:
    """Inductor on CPU (the local C compiler). Slow: about 30 s with a cold compile cache."""

    def train(compiled: bool) -> tuple[PicoDecoder, list[float]]:
        model = _tiny_model()
        if compiled:
            compile_blocks(model)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(1)
        losses = []
        for _ in range(3):
            rows = torch.randint(0, 512, (4, 33), generator=gen)
            opt.zero_grad(set_to_none=True)
            loss = ar_loss(model, rows)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return model, losses

    eager, eager_losses = train(False)
    compiled, compiled_losses = train(True)
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-5)
    assert eager_losses[2] < eager_losses[0]  # the steps did change the model
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
    save_pico(compiled, tmp_path / "c")
    torch.testing.assert_close(
        load_pico(tmp_path / "c")(torch.arange(8)[None]), eager(torch.arange(8)[None]),
        rtol=1e-4, atol=1e-5,
    )  # fmt: skip


def test_pretrain_cli_passes_compile_to_the_trainer(
    tmp_path: Path,
    fixture_data_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The trainer applies the key (tests/pretrain/test_trainer.py), so no note is printed."""
    from picomaml.cli.main import main as cli_main

    seen = []

    def fake(cfg: object, *args: object, **kwargs: object) -> None:
        seen.append(cfg)

    # Patched where the command looks it up (the handler module imports it at the top).
    monkeypatch.setattr("picomaml.cli.pretrain.run_pretraining", fake)
    config = "configs/pretrain/demo-vanilla.yaml"
    run = str(tmp_path / "run")
    argv = ["--data-dir", str(fixture_data_root), "pretrain", "--config", config, "--run-dir", run]
    assert cli_main(argv) == 0
    assert cli_main([*argv, "runtime.compile=true"]) == 0
    assert "runtime.compile" not in capsys.readouterr().err
    assert [c.runtime.compile for c in seen] == ["auto", True]

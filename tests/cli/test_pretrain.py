"""``picomaml pretrain``: flags become validated config keys; stop, resume, loggers, Fabric."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from picomaml.cli.main import main
from picomaml.config import to_dict
from picomaml.errors import PicomamlError
from picomaml.pretrain.trainer import build_fabric
from tests.pretrain.tiny import small_corpus, tiny_config


@pytest.fixture()
def config_file(tmp_path: Path, fixture_data_root: Path) -> Path:
    cfg = tiny_config(small_corpus(fixture_data_root, tmp_path / "corpus"), tmp_path / "cache")
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    return path


def test_cli_stop_then_resume(
    config_file: Path, fixture_data_root: Path, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    argv = ["--data-dir", str(fixture_data_root), "pretrain", "--config", str(config_file)]
    argv += ["--run-dir", str(run), "--devices", "1"]
    assert (
        main([*argv, "--stop-at-step", "1", "training.max_steps=2", "checkpointing.every=1"]) == 0
    )
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_1"
    assert main([*argv, "training.max_steps=2", "checkpointing.every=1"]) == 2  # needs --resume
    assert "--resume" in capsys.readouterr().err
    assert main([*argv, "--resume", "training.max_steps=2", "checkpointing.every=1"]) == 0
    assert "latest checkpoint step_2" in capsys.readouterr().out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["runtime"]["devices"] == 1 and saved["training"]["max_steps"] == 2


def test_cli_rejects_bad_flags(config_file: Path, capsys) -> None:
    assert main(["pretrain", "--config", str(config_file), "--strategy", "dpp"]) == 2
    assert "runtime.strategy" in capsys.readouterr().err
    assert main(["pretrain", "--config", str(config_file), "--precision", "fp8"]) == 2
    assert "training.precision" in capsys.readouterr().err


def test_build_fabric_passes_launch_settings(config_file: Path, tmp_path: Path) -> None:
    from lightning.fabric.strategies import DDPStrategy, SingleDeviceStrategy

    from picomaml.pretrain.config import load_pretrain_config

    cfg = load_pretrain_config(config_file, ["runtime.devices=2", "runtime.strategy=ddp"])
    fabric = build_fabric(cfg)
    assert isinstance(fabric.strategy, DDPStrategy)
    assert (
        fabric.strategy._ddp_kwargs["find_unused_parameters"] is True
    )  # episodes skip the LM head
    assert fabric.world_size == 2
    single = build_fabric(load_pretrain_config(config_file))
    assert isinstance(single.strategy, SingleDeviceStrategy)
    tb = load_pretrain_config(config_file, ["logging.tensorboard=true"])
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        assert build_fabric(tb, tmp_path).loggers
    else:
        with pytest.raises(PicomamlError, match="tensorboard"):
            build_fabric(tb, tmp_path)

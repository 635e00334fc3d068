"""Fixtures of the CLI tests: a tiny backbone folder and the default umask."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from picomaml.model import PicoConfig, PicoDecoder, save_pico


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("faults") / "backbone"
    save_pico(PicoDecoder(PicoConfig(d_model=48, n_layers=2, n_heads=4, n_kv_heads=2)), folder)
    return folder


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)

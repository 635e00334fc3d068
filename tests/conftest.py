"""Shared fixtures: the real offline data, found the same way the CLI finds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from picomaml.data.paths import resolve_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data root (``../shared/data`` here and in CI)."""
    return resolve_data_dir()


@pytest.fixture(scope="session")
def tokenizer(data_dir: Path):
    """The OLMo tokenizer from the data root, loaded once per session."""
    from picomaml.data.tokenizer import load_tokenizer

    return load_tokenizer(data_dir)

"""Shared fixtures: the committed fixture data root, and the real data when it is there.

Two data roots exist for tests:

* ``fixture_data_root``: ``tests/fixtures/data``, small committed files in the real layout
  (see ``tests/fixtures/make_fixtures.py``); always present, read-only by convention (copy it
  into ``tmp_path`` before writing).
* ``data_dir``: the real data root, found the way the CLI finds it (``$PICOMAML_DATA``, else
  ``../shared/data``, else ``./data``). Tests that need the real datasets (the paper's
  statistics, the demo end to end) use it or carry ``@pytest.mark.needs_real_data``; without a
  real root they are reported as skipped with the reason, never silently passed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.fixtures import FIXTURE_DATA, real_data_root

# One intra-op thread: the tests' tensors are tiny, and OpenMP workers that spin while
# the CPU is shared (parallel test runs, CI neighbours) made them up to 20x slower.
torch.set_num_threads(1)

# The fake Hugging Face Hub (``fake_hub``, ``hub_cache``) for the hf: backbone tests.
pytest_plugins = ["tests.fixtures.fakehub"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root, reason = real_data_root()
    if root is not None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "needs_real_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def fixture_data_root() -> Path:
    """The committed fixture data root (``tests/fixtures/data``); do not write into it."""
    return FIXTURE_DATA


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data root (``../shared/data`` here and in CI); skips the test without it."""
    root, reason = real_data_root()
    if root is None:
        pytest.skip(reason)
    return root


@pytest.fixture(scope="session")
def tokenizer():
    """The OLMo tokenizer (the data root's copy when present, else the shipped one)."""
    from picomaml.data.tokenizer import load_tokenizer

    return load_tokenizer(real_data_root()[0] or FIXTURE_DATA)


@pytest.fixture(scope="session")
def tiny_ner_run(fixture_data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished head-regime fine-tuning run on a seeded random 2-layer backbone (seconds).

    Shared and read-only: a test that damages a file copies the run first.
    """
    import torch

    from picomaml.config import load_config
    from picomaml.model import PicoConfig, PicoDecoder, save_pico
    from picomaml.ner.config import FinetuneConfig
    from picomaml.ner.finetune import finetune

    root = tmp_path_factory.mktemp("tiny_ner_run")
    torch.manual_seed(0)
    config = PicoConfig(d_model=48, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64)
    save_pico(PicoDecoder(config), root / "backbone")
    overrides = ["source=sk_snk", "max_train_sentences=16", "max_dev_sentences=16", "epochs=1"]
    overrides += ["batch_size=8", "device=cpu", f"backbone={root / 'backbone'}"]
    finetune(
        load_config(FinetuneConfig, None, overrides),
        root / "run",
        data_root=fixture_data_root,
        log=None,
    )
    return root / "run"

"""``picomaml bench``: each subcommand turns its flags into a benchmark's typed settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from picomaml.bench.meta import MetaBenchSettings
from picomaml.bench.ner import NerBenchSettings
from picomaml.cli.main import main as cli_main


def test_bench_ner_passes_typed_settings(
    monkeypatch: pytest.MonkeyPatch, fixture_data_root: Path, tmp_path: Path
) -> None:
    seen = []
    monkeypatch.setattr("picomaml.bench.ner.main", lambda s, out: seen.append((s, out)) or 0)
    out = str(tmp_path / "x.json")
    argv = ["bench", "ner", "--out", out, "--quick", "--iters", "3"]
    assert cli_main([*argv, "--data-dir", str(fixture_data_root)]) == 0
    assert seen == [(NerBenchSettings(True, 3, fixture_data_root.resolve()), out)]
    assert not (tmp_path / "x.json").exists()


def test_bench_meta_passes_typed_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    monkeypatch.setattr("picomaml.bench.meta.main", lambda *a: seen.append(a))
    argv = ["bench", "meta", "--ways", "4", "--episodes", "7", "--variants", "paper"]
    assert cli_main(argv) == 0
    want = MetaBenchSettings(ways=4, episodes=7)
    assert seen == [(want, ["paper"], None)]


def test_bench_meta_names_an_unknown_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["bench", "meta", "--variants", "nope", "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("picomaml: error: bench meta: unknown variant(s) nope; expected ")

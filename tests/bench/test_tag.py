"""``picomaml bench tag``: words and subword tokens per second of streamed tagging."""

from __future__ import annotations

import json
from pathlib import Path

from picomaml.bench.tag import bench_tag, random_run, synthetic_lines
from picomaml.cli.main import main as cli_main


def test_bench_tag_reports_tokens_per_second(tiny_ner_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "tag.json"
    args = ["bench", "tag", "--run", str(tiny_ner_run), "--lines", "30", "--long-words", "400"]
    assert cli_main([*args, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    for name in ("stream", "long_line"):
        assert report[name]["words"] > 0 and report[name]["words_per_s"] > 0
        assert report[name]["subword_tokens"] >= report[name]["words"]
    assert report["long_line"]["words"] == 400 and report["viterbi"]["words_per_s"] > 0
    assert "tag stream:" in capsys.readouterr().out


def test_bench_tag_without_a_run_uses_a_seeded_random_model() -> None:
    loaded = random_run("tiny", "cpu", seed=0, data_root=None)
    assert loaded.window == 2048 and int(loaded.model.config.d_model) == 96
    report = bench_tag(loaded, n_lines=3, long_words=20, seed=0)
    assert report["long_line"]["words"] == 20 and report["stream"]["words"] > 0
    assert synthetic_lines(3, seed=0) == synthetic_lines(3, seed=0)

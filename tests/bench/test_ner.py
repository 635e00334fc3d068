"""``picomaml bench ner``: one JSON report, the environment plus one entry per benchmark."""

from __future__ import annotations

import json

import torch

from picomaml.bench import ner as bench


def test_bench_main_writes_json(tmp_path, monkeypatch) -> None:
    """``bench ner`` writes one JSON object: the environment plus one entry per benchmark.

    The benchmarks themselves are shrunk here (the head-cache one has its own test): this
    checks the report's layout, not timings.
    """
    assert [name for name, _ in bench.BENCHES] == ["crf", "head_cache"]
    small = [("crf", lambda s: bench.bench_crf(batch=4, length=5, iters=s.iters))]
    monkeypatch.setattr(bench, "BENCHES", small)
    out = tmp_path / "ner.json"
    assert bench.main(bench.NerBenchSettings(iters=1), out) == 0
    report = json.loads(out.read_text())
    assert set(report) == {"env", "crf"} and report["env"]["torch"] == torch.__version__
    cpu = report["crf"]["devices"]["cpu"]
    assert report["crf"]["batch"] == 4 and report["crf"]["length"] == 5
    assert report["crf"]["iters"] == 1
    assert set(cpu) == {"loglik_fwd_bwd", "viterbi", "marginals"}
    assert all(v["sequences_per_s"] > 0 for v in cpu.values())

"""Streaming ``tag`` and the vectorised Viterbi (issue 22): output appears as input arrives,
input is read in bounded batches, a file shows a progress bar, and decoding a long sentence
is a few hundred tensor operations, not tens of thousands."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from picomaml.cli.main import main as cli_main
from picomaml.data.labels import LABELS
from picomaml.ner.crf import LinearChainCRF, iob2_constraints
from picomaml.ner.evaluate import load_run
from picomaml.ner.tag_text import BATCH_LINES, tag_lines, tag_stream


def test_stream_reads_bounded_batches_and_yields_before_reading_on(tiny_ner_run: Path) -> None:
    loaded = load_run(tiny_ner_run, device="cpu")
    read = []

    def lines():
        for i in range(3 * BATCH_LINES):
            read.append(i)
            yield "Pumunta si Maria sa Cebu ." if i % 7 else ""

    stream = tag_stream(loaded, lines())
    first = next(stream)
    assert len(read) == BATCH_LINES  # nothing beyond the first batch was read yet
    assert first.sentences[0].line == 2 and first.skipped_lines[0] == 1
    rest = list(stream)
    assert len(read) == 3 * BATCH_LINES and len(rest) == 2
    assert rest[-1].sentences[-1].line == 3 * BATCH_LINES
    whole = tag_lines(loaded, ["Pumunta si Maria sa Cebu .", "", "Si Juan"])
    assert [s.line for s in whole.sentences] == [1, 3] and whole.skipped_lines == [2]


def _reader(stream) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in iter(stream.readline, ""):
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_output_appears_as_input_arrives(tiny_ner_run: Path) -> None:
    """A pipe that pauses: each line is tagged before the next one is written."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "picomaml.cli.main", "tag", str(tiny_ner_run), "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    out = _reader(proc.stdout)
    try:
        for n, text in enumerate(["Pumunta si Maria sa Cebu .", "Salamat po"], 1):
            proc.stdin.write(text + "\n")
            proc.stdin.flush()
            record = json.loads(out.get(timeout=120))  # stdin is still open here
            assert record["line"] == n and record["words"] == text.split()
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0


def test_a_file_on_stdin_gets_a_progress_bar(
    tiny_ner_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "in.txt"
    path.write_text("Pumunta si Maria sa Cebu .\n\nSalamat po\n", encoding="utf-8")
    for flags, bar in (([], True), (["--no-progress"], False)):
        with path.open(encoding="utf-8") as fh:
            monkeypatch.setattr(sys, "stdin", fh)
            assert cli_main(["tag", str(tiny_ner_run), "--json", *flags]) == 0
        captured = capsys.readouterr()
        assert [json.loads(r)["line"] for r in captured.out.splitlines()] == [1, 3]
        assert ("tag: 100%" in captured.err) is bar
        assert "line 2 has no words, skipped" in captured.err
    assert cli_main(["tag", str(tiny_ner_run), "--json", "Salamat po"]) == 0
    assert "tag:" not in capsys.readouterr().err  # TEXT arguments: no bar


def _loop_viterbi(crf: LinearChainCRF, em: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The textbook recursion, one step per position (the reference)."""
    trans, start, end = crf._scores(em.dtype)
    score = start + em[:, 0]
    pointers = []
    for t in range(1, em.shape[1]):
        best, arg = (score.unsqueeze(2) + trans).max(dim=1)
        valid = mask[:, t].unsqueeze(1)
        score = torch.where(valid, best + em[:, t], score)
        pointers.append(torch.where(valid, arg, torch.arange(em.shape[2]).expand_as(arg)))
    path = [(score + end).argmax(dim=1)]
    for bp in reversed(pointers):
        path.append(bp.gather(1, path[-1].unsqueeze(1)).squeeze(1))
    return torch.stack(path[::-1], dim=1).masked_fill(~mask, -1)


@pytest.mark.parametrize("constrained", [False, True])
def test_blocked_viterbi_equals_the_recursion(constrained: bool) -> None:
    gen = torch.Generator().manual_seed(3)
    crf = LinearChainCRF(7, iob2_constraints(list(LABELS)) if constrained else None).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    for length in (1, 2, 3, 17, 64, 1001):
        em = torch.randn(4, length, 7, generator=gen, dtype=torch.float64) * 3
        lengths = torch.tensor([length, max(0, length - 5), length // 2, 0])
        mask = torch.arange(length) < lengths[:, None]
        paths, scores = crf.viterbi(em, mask)
        assert torch.equal(paths, _loop_viterbi(crf, em.masked_fill(~mask[..., None], 0), mask))
        rows = lengths > 0
        torch.testing.assert_close(scores[rows], crf.score(em, paths.clamp(min=0), mask)[rows])


def test_viterbi_is_vectorised_over_the_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10,000-word sentence takes a few hundred tensor operations (the loop took ~40,000),
    so a 1 MB line decodes in about a second instead of minutes."""
    crf = LinearChainCRF(7)
    em = torch.randn(1, 10_000, 7, generator=torch.Generator().manual_seed(0))
    calls = []
    real = torch.where

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "where", counted)
    paths, _ = crf.viterbi(em, torch.ones(1, 10_000, dtype=torch.bool))
    assert paths.shape == (1, 10_000) and len(calls) < 500

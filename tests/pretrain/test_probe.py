"""The few-shot probe: held-out episodes only, reproducible scores, intervals, the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from picomaml.cli.main import main
from picomaml.data.tokenizer import EOS_ID, MASK_ID, VOCAB_SIZE
from picomaml.model import PicoConfig, PicoDecoder, save_pico
from picomaml.pretrain.inputs import build_sampler
from picomaml.pretrain.meta_head import window_features
from picomaml.pretrain.probe import (
    ProbeEpisodes,
    ProbeSettings,
    fresh_head,
    interval,
    nearest_prototype_accuracy,
    probe_backbone,
    query_document_overlap,
)
from picomaml.pretrain.smlmt import check_episode, document_ids, is_held_out

SETTINGS = ProbeSettings(
    ways=4, shots=2, queries=2, episodes=6, window=16, row_tokens=128, min_word_count=4,
    max_word_frequency=0.05, head_layers=2, head_hidden=16, words="all",
    separate_documents=False,
)  # fmt: skip
CLI_SETTINGS = [
    "--ways", "4", "--shots", "2", "--queries", "2", "--episodes", "6", "--window", "16",
    "--words", "all",  # the fixture's valid file is too small for the held-out share
]  # fmt: skip


def _backbone(seed: int = 0) -> PicoDecoder:
    torch.manual_seed(seed)
    cfg = PicoConfig(
        d_model=16, n_layers=2, n_heads=2, n_kv_heads=1, vocab_size=VOCAB_SIZE, max_seq_len=32
    )
    return PicoDecoder(cfg)


def _rows(tokens: np.ndarray, width: int = 128) -> np.ndarray:
    return tokens[: tokens.size // width * width].reshape(-1, width)


def _vocab() -> list[str]:
    """Every id a word-initial alphabetic token, so any id can be an episode's class."""
    return [" w" + chr(97 + i % 26) + chr(97 + (i // 26) % 26) for i in range(VOCAB_SIZE)]


def test_nearest_prototype_accuracy_by_hand() -> None:
    s = torch.tensor([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0]])
    s_lab = torch.tensor([0, 0, 1, 1])
    q = torch.tensor([[1.0, 1.0], [9.0, 1.0], [6.0, 1.0]])  # the last is closer to class 1
    q_lab = torch.tensor([0, 1, 0])
    assert nearest_prototype_accuracy(s, s_lab, q, q_lab, 2) == pytest.approx(2 / 3)


def test_interval_is_the_normal_approximation() -> None:
    out = interval([0.0, 1.0, 0.0, 1.0])
    half = 1.96 * np.std([0, 1, 0, 1], ddof=1) / 2
    assert out["mean"] == 0.5 and out["n"] == 4
    assert out["ci95"] == pytest.approx([0.5 - half, 0.5 + half])


def test_episodes_come_from_the_held_out_rows_only() -> None:
    """Training and held-out rows use disjoint ids; every probe window is a slice of a
    held-out row (with its class word masked) and shares no id with the training rows."""
    rng = np.random.default_rng(0)
    train = _rows(rng.integers(1000, 1400, size=20_000))
    valid = _rows(rng.integers(2000, 2060, size=6_000))
    episodes = ProbeEpisodes(valid, _vocab(), MASK_ID, SETTINGS)
    assert len(episodes.episodes) == SETTINGS.episodes
    train_ids = set(np.unique(train).tolist())
    for ep in episodes.episodes:
        for ids, mask, places in (
            (ep.support_ids, ep.support_mask, ep.support_places),
            (ep.query_ids, ep.query_mask, ep.query_places),
        ):
            for win, m, (row, start) in zip(ids, mask, places, strict=True):
                original = valid[row, start : start + SETTINGS.window]
                assert np.array_equal(win[~m], original[~m])
                assert not set(original.tolist()) & train_ids


def test_probe_is_reproducible_and_the_head_is_shared() -> None:
    rng = np.random.default_rng(1)
    valid = _rows(rng.integers(2000, 2060, size=6_000))
    runs = []
    for _ in range(2):
        episodes = ProbeEpisodes(valid, _vocab(), MASK_ID, SETTINGS)
        torch.manual_seed(123)  # the global RNG must not matter
        runs.append(probe_backbone(_backbone(), episodes))
    for kind in ("prototype", "adapted"):
        assert runs[0][kind]["per_episode"] == runs[1][kind]["per_episode"]
        assert runs[0][kind]["mean"] == pytest.approx(np.mean(runs[0][kind]["per_episode"]))
        lo, hi = runs[0][kind]["ci95"]
        assert lo <= runs[0][kind]["mean"] <= hi
    a, b = fresh_head(16, SETTINGS), fresh_head(16, SETTINGS)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    other = probe_backbone(_backbone(seed=5), ProbeEpisodes(valid, _vocab(), MASK_ID, SETTINGS))
    assert other["prototype"]["per_episode"] != runs[0]["prototype"]["per_episode"]


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    for step in (1, 2):
        save_pico(_backbone(seed=step), run / "checkpoints" / f"step_{step}")
    (run / "checkpoints" / "latest").write_text("step_2\n", encoding="utf-8")
    (run / "config.yaml").write_text(
        "meta:\n  enabled: true\n  max_word_frequency: 0.05\n  heldout_share: 0.2\n",
        encoding="utf-8",
    )
    return run


def test_cli_probes_every_checkpoint_on_the_valid_file(
    tmp_path: Path, fixture_data_root: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    import picomaml.pretrain.probe as probe_module

    read: list[str] = []
    real = probe_module.load_rows

    def spy(path, *args, **kwargs):
        read.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(probe_module, "load_rows", spy)
    monkeypatch.setenv("PICOMAML_CACHE", str(tmp_path / "cache"))
    run = _run_dir(tmp_path)
    root = ["--data-dir", str(fixture_data_root), "probe"]
    assert main([*root, str(run), "--all-checkpoints", *CLI_SETTINGS]) == 0
    assert read and all(p.endswith("valid.jsonl.gz") for p in read)
    record = json.loads((run / "probe.json").read_text(encoding="utf-8"))
    assert [c["step"] for c in record["checkpoints"]] == [1, 2]
    assert all(c["variant"] == "maml" for c in record["checkpoints"])
    assert record["chance"] == 0.25 and record["settings"]["ways"] == 4
    # The candidate rule is the run's own (its config.yaml), and every setting is recorded.
    assert record["settings"]["max_word_frequency"] == 0.05
    assert record["settings"]["heldout_share"] == 0.2
    assert record["settings"]["separate_documents"] is True
    assert record["version"] == 2 and record["query_shares_document"] == 0.0
    first = record["checkpoints"][0]["adapted"]["per_episode"]
    # Scoring one checkpoint again replaces its entry and gives the same numbers.
    assert main([*root, str(run / "checkpoints" / "step_1"), *CLI_SETTINGS]) == 0
    again = json.loads((run / "probe.json").read_text(encoding="utf-8"))
    assert [c["step"] for c in again["checkpoints"]] == [1, 2]
    assert again["checkpoints"][0]["adapted"]["per_episode"] == first
    assert "chance 25.0%" in capsys.readouterr().out


def test_cli_all_checkpoints_needs_a_run_dir(tmp_path: Path, fixture_data_root: Path, capsys):
    folder = tmp_path / "bare"
    save_pico(_backbone(), folder)
    code = main(["--data-dir", str(fixture_data_root), "probe", str(folder), "--all-checkpoints"])
    assert code == 2
    assert "--all-checkpoints needs a pretraining run dir" in capsys.readouterr().err


def _documents(rng: np.random.Generator, n_tokens: int, vocab: int, doc_len: int) -> np.ndarray:
    """A token stream of documents of ``doc_len`` ids each, ended by ``<|endoftext|>``."""
    out = []
    while sum(len(d) for d in out) < n_tokens:
        out.append(np.append(rng.integers(2000, 2000 + vocab, size=doc_len - 1), EOS_ID))
    return np.concatenate(out)[:n_tokens]


def test_probe_words_are_never_pretraining_classes() -> None:
    """The held-out words (default) and the training sampler's words are disjoint, and
    together they are the candidates."""
    rng = np.random.default_rng(2)
    rows = _rows(rng.integers(2000, 2300, size=40_000))
    vocab = _vocab()
    held = replace(SETTINGS, words="held-out", heldout_share=0.3)
    probe_words = ProbeEpisodes(rows, vocab, MASK_ID, held)
    meta = replace(held.meta(), pool_tokens=None)
    training = build_sampler(meta, rows, vocab, MASK_ID, words="training")
    everyone = build_sampler(meta, rows, vocab, MASK_ID, words="all")
    probe_set = {int(w) for ep in probe_words.episodes for w in ep.words}
    assert probe_set and not probe_set & set(training.words.tolist())
    assert all(is_held_out(vocab[w], 0.3) for w in probe_set)
    assert not any(is_held_out(vocab[w], 0.3) for w in training.words)
    assert sorted([*training.words, *build_sampler(meta, rows, vocab, MASK_ID,
                   words="held-out").words]) == sorted(everyone.words)  # fmt: skip
    # The split is a property of the word, whatever its case or leading space.
    assert is_held_out(" Maria", 0.5) == is_held_out("maria", 0.5)


def test_document_rule_keeps_queries_out_of_their_support_documents() -> None:
    rng = np.random.default_rng(3)
    rows = _rows(_documents(rng, 30_000, 40, doc_len=300))
    docs = document_ids(rows, EOS_ID)
    apart = ProbeEpisodes(rows, _vocab(), MASK_ID, replace(SETTINGS, separate_documents=True))
    mixed = ProbeEpisodes(rows, _vocab(), MASK_ID, replace(SETTINGS, separate_documents=False))
    for ep in apart.episodes:
        assert query_document_overlap(ep, docs, rows.shape[1]) == 0.0
        check_episode(ep, SETTINGS.shots, SETTINGS.queries, MASK_ID)
    assert apart.shared_document == 0.0
    assert mixed.shared_document > 0.0  # without the rule, queries do share documents


def test_document_ids_follow_the_end_of_text_tokens() -> None:
    rows = np.array([[5, EOS_ID, 6, 7], [EOS_ID, 8, 9, EOS_ID]])
    assert document_ids(rows, EOS_ID).tolist() == [0, 0, 1, 1, 1, 2, 2, 2]


def test_before_mask_reads_the_state_before_the_first_masked_token() -> None:
    backbone = _backbone()
    ids = torch.randint(0, 100, (3, 8))
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[0, 4] = mask[0, 6] = mask[1, 0] = mask[2, 7] = True
    hidden = backbone.hidden_states(ids)
    feats = window_features(backbone, ids, mask, "before_mask")
    torch.testing.assert_close(feats, hidden[[0, 1, 2], [3, 0, 6]])

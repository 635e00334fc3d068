"""The README's "Use a picomaml model elsewhere" examples, run as written (paths swapped for
tiny test models; the Hub is the loopback fake Hub)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch

from picomaml.cli.main import main
from picomaml.model import PicoConfig, PicoDecoder, save_pico

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Use a picomaml model elsewhere"


def blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(python|bash)\n(.*?)```", section, flags=re.S)


def test_the_section_has_three_five_line_examples():
    found = blocks()
    assert [lang for lang, _ in found] == ["python", "python", "bash"]
    assert all(len(code.strip().splitlines()) == 5 for _, code in found)


def test_transformers_example(tmp_path, capsys):
    pytest.importorskip("transformers", reason="the [transformers] extra is needed")
    torch.manual_seed(0)
    folder = save_pico(
        PicoDecoder(PicoConfig(d_model=24, n_layers=2, n_heads=4, n_kv_heads=2)),
        tmp_path / "step_100",
    )
    code = blocks()[0][1].replace("runs/pretrain/demo-maml/checkpoints/step_100", str(folder))
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.startswith("Ang Maynila ay")


def test_spacy_example(tiny_ner_run, capsys):
    pytest.importorskip("spacy", reason="the [spacy] extra is needed")
    import picomaml.ner.spacy_ner  # noqa: F401  (the entry point's job once installed)

    code = blocks()[1][1].replace("runs/ft/maml-tiny-head-sk_snk", str(tiny_ner_run))
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.startswith("[")


def test_hub_example(tiny_ner_run, tmp_path, fixture_data_root, fake_hub, hub_upload, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(tiny_ner_run, run)
    swap = {
        "runs/ft/maml-tiny-head-sk_snk": str(run),
        "OWNER/NAME": "me/readme-example",
        "preview": str(tmp_path / "preview"),
        "runs/ft/from-hub": str(tmp_path / "from-hub"),
    }
    for line in blocks()[2][1].strip().splitlines():
        for old, new in swap.items():
            line = line.replace(old, new)
        words = shlex.split(line, comments=True)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            monkeypatch.setenv(name, value)
            continue
        assert words[0] == "picomaml"
        args = words[1:]
        if args[0] == "finetune":  # a few sentences of the committed fixture data
            args += ["--data-dir", str(fixture_data_root), "epochs=1", "max_train_sentences=8"]
            args += ["max_dev_sentences=8", "device=cpu"]
        assert main(args) == 0, line
    assert os.environ["HF_TOKEN"] == "hf_xxx"
    assert (tmp_path / "preview" / "README.md").is_file()
    assert (tmp_path / "from-hub" / "run.json").is_file()

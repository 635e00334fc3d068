"""The model card (``README.md``) that ``picomaml push`` puts beside a model.

Everything in it is read from the run's own files, nothing is typed in: the YAML front
matter the Hub indexes (language, license, tags, datasets, base model), the training
config as written by the run, the zero-shot scores with their bootstrap intervals from
``results.json``, the paper reference, and caveats stated from the run's numbers (steps
against the paper's 6,000, sentence limits, the number of seeds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from picomaml.data.registry import SOURCES, TARGETS

PAPER_TITLE = (
    "Meta-Pretraining for Zero-Shot Cross-Lingual Named Entity Recognition in Low-Resource "
    "Philippine Languages"
)
PAPER_AUTHORS = (
    "David Demitri Africa, Suchir Salhan, Yuval Weiss, Paula Buttery, Richard Diehl Martinez"
)
PAPER_STEPS = 6000
LICENSE = "apache-2.0"
UNER_DATASET = "universalner/universal_ner"
HUB_CORPUS = "pico-lm/pretokenized-dolma"


@dataclass
class CardInputs:
    """What a card is written from (:mod:`picomaml.publish.push` gathers it)."""

    repo_id: str
    kind: str  # "backbone" or "ner"
    pretrain_config: dict[str, Any] | None = None
    pretrain_step: int | None = None
    finetune_config: dict[str, Any] | None = None
    run: dict[str, Any] | None = None
    results: dict[str, Any] | None = None
    base_model: str | None = None
    vocab_size: int | None = None
    files: list[str] = field(default_factory=list)


def language_of(code: str) -> str:
    """ISO code of a UNER dataset code (``sk_snk`` -> ``sk``, ``ceb_gja`` -> ``ceb``)."""
    return code.split("_", 1)[0]


def _languages(inputs: CardInputs) -> list[str]:
    if inputs.kind == "backbone":
        return ["en"]  # Dolma and the English stand-in corpus are English
    source = (inputs.run or {}).get("source", "")
    sources = SOURCES if source == "all" else (source,)
    return list(dict.fromkeys([*(language_of(s) for s in sources if s), "tl", "ceb"]))


def _datasets(inputs: CardInputs) -> list[str]:
    out = []
    corpus = str(((inputs.pretrain_config or {}).get("data") or {}).get("corpus", ""))
    if corpus == HUB_CORPUS:
        out.append(HUB_CORPUS)
    if inputs.kind == "ner":
        out.append(UNER_DATASET)
    return out


def front_matter(inputs: CardInputs) -> dict[str, Any]:
    """The YAML header the Hub reads."""
    variant = _variant(inputs)
    tags = ["picomaml", "pico-decoder", variant]
    tags += ["ner", "token-classification", "zero-shot"] if inputs.kind == "ner" else []
    meta: dict[str, Any] = {
        "language": _languages(inputs),
        "license": LICENSE,
        "library_name": "transformers",
        "pipeline_tag": "token-classification" if inputs.kind == "ner" else "text-generation",
        "tags": [t for t in tags if t],
    }
    datasets = _datasets(inputs)
    if datasets:
        meta["datasets"] = datasets
    if inputs.base_model:
        meta["base_model"] = inputs.base_model
    return meta


def _variant(inputs: CardInputs) -> str | None:
    meta = (inputs.pretrain_config or {}).get("meta") or {}
    if "enabled" in meta:
        return "maml" if meta["enabled"] else "vanilla"
    return (inputs.run or {}).get("variant")


def scores_table(results: dict[str, Any] | None) -> str:
    """Zero-shot targets first, then every other scored set: F1 and its 95% interval."""
    datasets = (results or {}).get("datasets") or {}
    if not datasets:
        return "No `results.json`: this run was not evaluated, so there are no scores.\n"
    order = [c for c in TARGETS if c in datasets] + sorted(set(datasets) - set(TARGETS))
    rows = [
        "| dataset | zero-shot | micro-F1 | 95% interval | sentences | gold entities |",
        "|---|---|---|---|---|---|",
    ]
    for code in order:
        entry = datasets[code]
        f1 = entry["default"]["micro"]["f1"]
        lo, hi = entry["bootstrap"]["f1_ci95"]
        rows.append(
            f"| {code} | {'yes' if code in TARGETS else 'no'} | {100 * f1:.1f} | "
            f"[{100 * lo:.1f}, {100 * hi:.1f}] | {entry['n_sentences']} | "
            f"{entry['n_gold_entities']} |"
        )
    n = next(iter(datasets.values()))["bootstrap"].get("n_resamples")
    note = (
        f"\nMicro-F1 (seqeval, default mode) in percent; intervals: sentence-level bootstrap "
        f"({n} resamples) over the test set, for this one fine-tuning run.\n"
    )
    return "\n".join(rows) + "\n" + note


def caveats(inputs: CardInputs) -> list[str]:
    """Honest limits, each computed from the run's own settings."""
    out = []
    steps = ((inputs.pretrain_config or {}).get("training") or {}).get("max_steps")
    if steps is not None and steps < PAPER_STEPS:
        out.append(
            f"**Demo scale.** The backbone's pretraining was set to {steps} steps (the paper: "
            f"{PAPER_STEPS:,}); its numbers say nothing about the paper's claims."
        )
    if inputs.pretrain_step is not None:
        out.append(f"These weights are the checkpoint of pretraining step {inputs.pretrain_step}.")
    ft = inputs.finetune_config or {}
    limits = [f"{k}={ft[k]}" for k in ("max_train_sentences", "max_dev_sentences") if ft.get(k)]
    if limits:
        out.append(f"**Demo scale.** Fine-tuned on a slice of the data ({', '.join(limits)}).")
    if inputs.kind == "ner":
        seed = (inputs.run or {}).get("seed")
        out.append(
            f"**One seed.** One fine-tuning run (seed {seed}); the intervals cover test-set "
            "sampling only, not the variation between seeds or pretraining runs."
        )
        out.append(
            "Labels are UNER's PER, LOC and ORG only; Tagalog and Cebuano were never seen in "
            "fine-tuning (zero-shot transfer)."
        )
    else:
        if inputs.pretrain_config is not None:
            seed = (inputs.pretrain_config.get("training") or {}).get("seed")
            out.append(
                f"**One seed.** One pretraining run (seed {seed}); nothing here measures how "
                "much another seed would change the weights or what is built on them."
            )
        out.append(
            "A base language model: it has no instruction tuning and no safety filtering, and "
            "was trained on English text only."
        )
    if inputs.pretrain_config is None:
        out.append("The backbone's pretraining config was not available to this card.")
    return out


def _usage(inputs: CardInputs) -> str:
    lines = [
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        f'model = AutoModelForCausalLM.from_pretrained("{inputs.repo_id}", trust_remote_code=True)',
        f'tokenizer = AutoTokenizer.from_pretrained("{inputs.repo_id}", trust_remote_code=True)',
        "```",
    ]
    text = "\n".join(lines) + "\n"
    if inputs.kind == "ner":
        text += (
            "\nThe NER head (a linear-chain CRF over the backbone's word features) is in "
            "`ner/`; `picomaml tag` and the `picomaml_ner` spaCy component use it from the "
            "run directory it was pushed from.\n"
        )
    return text


def _config_block(title: str, config: dict[str, Any] | None) -> str:
    if config is None:
        return ""
    body = yaml.safe_dump(config, sort_keys=False, allow_unicode=True).rstrip()
    return f"### {title}\n\n```yaml\n{body}\n```\n\n"


def model_card(inputs: CardInputs) -> str:
    """The whole ``README.md``."""
    header = yaml.safe_dump(front_matter(inputs), sort_keys=False, allow_unicode=True)
    what = "a Pico decoder language model" if inputs.kind == "backbone" else "a zero-shot NER model"
    parts = [
        f"---\n{header}---\n",
        f"# {inputs.repo_id.split('/')[-1]}\n",
        f"This is {what} trained with picomaml, the reference "
        f"implementation of *{PAPER_TITLE}*."
        + (f" Vocabulary size: {inputs.vocab_size:,}." if inputs.vocab_size else "")
        + "\n",
        "## Use\n",
        _usage(inputs),
        "## Zero-shot results\n",
        scores_table(inputs.results)
        if inputs.kind == "ner"
        else "A backbone has no NER scores of its own; fine-tune it with `picomaml finetune`.\n",
        "## Training config\n",
        _config_block("Pretraining (RUN_DIR/config.yaml)", inputs.pretrain_config)
        + _config_block("Fine-tuning (finetune.yaml)", inputs.finetune_config)
        or "Not available.\n",
        "## Caveats\n",
        "\n".join(f"- {c}" for c in caveats(inputs)) + "\n",
        "## Paper\n",
        f"{PAPER_AUTHORS}. *{PAPER_TITLE}*.\n",
        "## Files\n",
        "\n".join(f"- `{f}`" for f in inputs.files) + "\n",
    ]
    return "\n".join(parts)

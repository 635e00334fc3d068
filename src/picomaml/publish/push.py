"""``picomaml push RUN --repo OWNER/NAME``: a backbone or an NER run as a Hub repository.

The repository is laid out so that it works from every side at once:

* its root is a Pico folder loadable by ``transformers`` (``config.json`` with
  ``auto_map``, ``model.safetensors``, the modeling file, the tokenizer,
  ``generation_config.json``; :mod:`picomaml.model.hf_files`), so
  ``AutoModelForCausalLM.from_pretrained(REPO, trust_remote_code=True)`` and picomaml's own
  ``hf:OWNER/NAME`` reference (``finetune --backbone``, ``model fetch``) both read it;
* an NER run adds ``ner/``: ``crf_head.safetensors``, ``finetune.yaml``, ``run.json`` and
  ``results.json``; a pretraining run adds ``picomaml/config.yaml``;
* ``README.md`` is the model card (:mod:`picomaml.publish.card`).

``RUN`` is a Pico folder, a pretraining run dir (its ``checkpoints/latest``), a
``checkpoints/step_N`` folder, or a fine-tuning run dir. The folder is staged first
(``--dry-run DIR`` stops there), then uploaded with ``huggingface_hub`` in one commit.
``huggingface_hub`` is imported only when uploading (the ``[hub]`` extra).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from picomaml import layout
from picomaml.config import parse_yaml
from picomaml.errors import PicomamlError
from picomaml.fileio import copy_file, read_json, write_text
from picomaml.model.backbone import recorded_backbone_folder, resolve_backbone
from picomaml.model.export import export_folder
from picomaml.model.hub import INSTALL_HINT, _endpoint, _first_line, _hub_errors, parse_hub_ref
from picomaml.model.pico_files import read_pico_config
from picomaml.publish.card import CardInputs, model_card

NER_DIR = "ner"
PRETRAIN_COPY = "picomaml/config.yaml"
CARD = "README.md"


@dataclass(frozen=True)
class Staged:
    """A folder ready to upload, and what was put into it."""

    folder: Path
    kind: str
    files: list[str]


def _read_yaml(path: Path) -> dict[str, Any] | None:

    if not path.is_file():
        return None
    data = parse_yaml(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else None


def _stage_backbone(source: Path, dest: Path) -> int:
    """Copy config.json + weights and add the ``transformers`` files; the vocabulary size."""

    dest.mkdir(parents=True, exist_ok=True)
    for name in layout.PICO_FILES:
        copy_file(source / name, dest / name)
    export_folder(dest)
    return read_pico_config(dest).vocab_size


def _is_ner_run(path: Path) -> bool:
    return (path / layout.RUN_JSON).is_file() and (path / layout.FINETUNE_YAML).is_file()


def stage(run: str | Path, repo_id: str, dest: str | Path) -> Staged:
    """Write the repository's folder into ``dest`` (which must not exist or be empty)."""

    run, dest = Path(run), Path(dest)
    if not run.exists():
        raise PicomamlError(f"push: {run} does not exist")
    if dest.exists() and any(dest.iterdir()):
        raise PicomamlError(f"push: {dest} is not empty (the staged folder must start empty)")
    inputs = CardInputs(repo_id=repo_id, kind="ner" if _is_ner_run(run) else "backbone")
    if inputs.kind == "ner":
        if not (run / layout.CRF_HEAD).is_file():
            raise PicomamlError(f"push: {run} is missing {layout.CRF_HEAD} (an unfinished run)")
        inputs.run = read_json(run / layout.RUN_JSON)
        inputs.finetune_config = _read_yaml(run / layout.FINETUNE_YAML)
        if (run / layout.RESULTS_JSON).is_file():
            inputs.results = read_json(run / layout.RESULTS_JSON)
        full = inputs.run.get("regime") == "full"
        backbone = run / layout.BACKBONE_DIR if full else recorded_backbone_folder(inputs.run)
        hub = inputs.run.get("backbone_hub")
        if isinstance(hub, dict) and hub.get("repo"):
            inputs.base_model = str(hub["repo"])
        pretrain_dir = layout.pretrain_run_dir(inputs.run["backbone"])
        step = inputs.run.get("pretrain_step")
    else:
        resolved = resolve_backbone(run)
        backbone, pretrain_dir, step = resolved.folder, resolved.run_dir, resolved.step
    inputs.pretrain_step = step
    if pretrain_dir is not None:
        inputs.pretrain_config = _read_yaml(pretrain_dir / layout.PRETRAIN_CONFIG)
    inputs.vocab_size = _stage_backbone(backbone, dest)
    if inputs.kind == "ner":
        for name in (layout.CRF_HEAD, layout.FINETUNE_YAML, layout.RUN_JSON, layout.RESULTS_JSON):
            if (run / name).is_file():
                target = dest / NER_DIR / Path(name).name
                target.parent.mkdir(parents=True, exist_ok=True)
                copy_file(run / name, target)
    if pretrain_dir is not None and (pretrain_dir / layout.PRETRAIN_CONFIG).is_file():
        (dest / PRETRAIN_COPY).parent.mkdir(parents=True, exist_ok=True)
        copy_file(pretrain_dir / layout.PRETRAIN_CONFIG, dest / PRETRAIN_COPY)
    inputs.files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    write_text(dest / CARD, model_card(inputs))
    return Staged(dest, inputs.kind, sorted([*inputs.files, CARD]))


def upload(folder: Path, repo_id: str, private: bool = False) -> str:
    """Create the repository if needed and upload ``folder`` in one commit; the commit id."""
    try:
        import huggingface_hub  # optional (hub extra) and slow: only an upload needs it
    except ImportError as exc:
        raise PicomamlError(f"push needs huggingface_hub: {INSTALL_HINT}") from exc
    api = huggingface_hub.HfApi(endpoint=_endpoint())
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            commit_message=f"picomaml push: {folder.name}",
        )
    except _hub_errors() as exc:
        raise PicomamlError(
            f"push to {repo_id} failed: {_first_line(exc)} (a write token is needed: "
            "`hf auth login` or HF_TOKEN)"
        ) from exc
    return str(info.oid)


def push(
    run: str | Path, repo_id: str, dry_run: str | Path | None = None, private: bool = False
) -> tuple[Staged, str | None]:
    """Stage ``run`` and upload it (``dry_run``: stage into that folder, upload nothing)."""
    if repo_id.count("/") != 1:
        raise PicomamlError(f"push: --repo must be OWNER/NAME, got {repo_id!r}")
    parse_hub_ref(f"hf:{repo_id}")  # the same name rules as every hf: reference
    if dry_run is not None:
        return stage(run, repo_id, dry_run), None
    with tempfile.TemporaryDirectory(prefix="picomaml-push-") as tmp:
        staged = stage(run, repo_id, Path(tmp) / repo_id.split("/")[1])
        return staged, upload(staged.folder, repo_id, private)

"""Backbone references, resolved in one place: which Pico HF folder a reference names, which
reference names pretraining step N, and whether the folder is of the expected tier.

A backbone may be a Pico HF folder, a pretraining run dir (``checkpoints/latest`` names
the step folder used), a ``checkpoints/step_N`` folder (names: :mod:`picomaml.layout`) or
a published checkpoint on the Hugging Face Hub, ``hf:OWNER/REPO[@REVISION][/SUBFOLDER]``
(:mod:`picomaml.model.hub`: only ``config.json`` and the weights are downloaded, and the
commit they came from is kept so a run can record it). Missing files are errors naming
the file, never a silent fallback to another checkpoint. Fine-tuning, evaluation, the probe,
``push`` and the study grid (its checkpoint sweeps) all resolve backbones through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from picomaml import layout
from picomaml.config import SIZES, parse_yaml
from picomaml.errors import PicomamlError
from picomaml.model import PicoConfig, PicoDecoder, config_for, load_pico, read_pico_config
from picomaml.model.hub import fetch_checkpoint, is_hub_ref, parse_hub_ref

#: Fields of a ``PicoConfig`` that define the backbone's shape (``max_seq_len`` and RoPE
#: settings are not: the same weights run with any window).
SHAPE_KEYS: tuple[str, ...] = (
    "d_model",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "vocab_size",
    "activation_hidden_dim",
)
#: The shape fields that name a tier. ``vocab_size`` is not one: the published Pico-MAML
#: checkpoints have 50,281 rows (OLMo's ids + ``[MASK]``) and vanilla Pico 50,304, both of
#: the same tiers; whether a tokenizer fits is :func:`picomaml.model.check_vocab`'s question.
TIER_KEYS: tuple[str, ...] = tuple(k for k in SHAPE_KEYS if k != "vocab_size")


# --- backbone resolution -------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedBackbone:
    """Where a backbone's weights are, and what is known about where they came from."""

    folder: Path
    requested: str
    step: int | None
    run_dir: Path | None
    variant: str | None
    #: For a Hub reference: repository, revision, subfolder and the resolved commit
    #: (:meth:`picomaml.model.hub.HubCheckpoint.provenance`); None for a local path.
    hub: dict[str, str | None] | None = None


def _check_pico_folder(folder: Path, what: str) -> None:
    missing = [name for name in layout.PICO_FILES if not (folder / name).is_file()]
    if missing:
        raise PicomamlError(
            f"{what} {folder} is missing {', '.join(missing)}: expected a Pico HF folder "
            "(config.json + model.safetensors), a pretraining run dir (with "
            "checkpoints/latest) or a checkpoints/step_N folder"
        )


def _pretrain_variant(run_dir: Path) -> str | None:
    """``maml`` or ``vanilla`` from a pretraining run's ``config.yaml`` (None if unknown)."""
    cfg_path = run_dir / layout.PRETRAIN_CONFIG
    if not cfg_path.is_file():
        return None
    try:
        data = parse_yaml(cfg_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PicomamlError(f"{cfg_path}: not valid YAML ({exc})") from exc
    meta = data.get("meta") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or "enabled" not in meta:
        return None
    return "maml" if meta["enabled"] else "vanilla"


def _resolve_hub(reference: str) -> ResolvedBackbone:
    """Fetch (or find in the Hugging Face cache) a published checkpoint's config and weights."""
    ckpt = fetch_checkpoint(parse_hub_ref(reference))
    _check_pico_folder(ckpt.folder, f"Hub checkpoint {reference} (downloaded to)")
    step = layout.parse_step(ckpt.ref.subfolder.rsplit("/", 1)[-1])
    return ResolvedBackbone(ckpt.folder, reference, step, None, None, ckpt.provenance())


def resolve_backbone(path: str | Path) -> ResolvedBackbone:
    """Find the Pico HF folder behind ``path``.

    ``path`` may be a Pico HF folder, a pretraining run dir (``checkpoints/latest`` names the
    step folder used), a ``checkpoints/step_N`` folder, or a Hub reference
    ``hf:OWNER/REPO[@REVISION][/SUBFOLDER]`` (downloaded into the Hugging Face cache; the
    pretraining step is read from a ``step_N`` subfolder, else unknown). Missing files are
    errors naming the file, never a silent fallback to another checkpoint.
    """
    if is_hub_ref(path):
        return _resolve_hub(str(path))
    requested = str(path)
    path = Path(path).expanduser()
    if not path.exists():
        raise PicomamlError(f"backbone {path} does not exist")
    if not path.is_dir():
        raise PicomamlError(f"backbone {path} is not a directory")
    run_dir: Path | None = None
    ckpt_root = path / layout.CHECKPOINTS
    if ckpt_root.is_dir() and not (path / layout.PICO_CONFIG).is_file():
        run_dir = path
        name = layout.read_latest(ckpt_root)
        if name is None:
            raise PicomamlError(
                f"pretraining run dir {path} has no checkpoints/latest (a text file holding "
                "step_N); pass a checkpoints/step_N folder instead"
            )
        folder = ckpt_root / name
        if not folder.is_dir():
            raise PicomamlError(
                f"{ckpt_root / layout.LATEST} names {name}, but {folder} does not exist"
            )
    else:
        folder = path
        if folder.parent.name == layout.CHECKPOINTS and layout.parse_step(folder.name) is not None:
            run_dir = folder.parent.parent
    _check_pico_folder(folder, "backbone folder")
    step = layout.parse_step(folder.name)
    variant = _pretrain_variant(run_dir) if run_dir is not None else None
    return ResolvedBackbone(folder.resolve(), requested, step, run_dir, variant)


# --- pretraining step N of a backbone (checkpoint sweeps) --------------------------------------


def step_template(reference: str) -> str | None:
    """For an ``hf:`` reference ending in ``checkpoints/step_N``, the same reference with
    ``{step}`` in place of N (how a sweep finds the other steps); else None."""
    if not is_hub_ref(reference):
        return None
    ref = parse_hub_ref(reference)
    head, _, last = ref.subfolder.rpartition("/")
    if layout.parse_step(last) is not None and head.rsplit("/", 1)[-1] == layout.CHECKPOINTS:
        return str(ref).rsplit("/", 1)[0] + "/" + layout.step_name("{step}")
    return None


def checkpoint_reference(
    run_dir: str | Path, template: str | dict[int, str] | None, step: int
) -> str:
    """The reference of pretraining step ``step``: the mapping's entry, the template with
    ``{step}`` filled in, or (no template) ``run_dir/checkpoints/step_N`` of a local run."""
    if isinstance(template, dict):
        return template[step]
    if isinstance(template, str):
        return template.replace("{step}", str(step))
    return str(layout.step_dir(Path(run_dir) / layout.CHECKPOINTS, step))


def local_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of the complete checkpoints (``step_N`` with weights) of a local
    pretraining run dir, by step."""
    return layout.step_dirs(Path(run_dir) / layout.CHECKPOINTS, require=layout.PICO_WEIGHTS)


# --- shape and tier --------------------------------------------------------------------------


def backbone_shape(config: PicoConfig | dict) -> dict[str, int]:
    """Shape-defining fields of a ``PicoConfig`` or its dict (effective feed-forward width)."""
    if isinstance(config, dict):
        shape = {key: config.get(key) for key in SHAPE_KEYS}
    else:
        shape = {key: getattr(config, key, None) for key in SHAPE_KEYS}
    if shape["activation_hidden_dim"] is None:
        shape["activation_hidden_dim"] = 4 * int(shape["d_model"])
    return shape


def tier_shape(config: PicoConfig | dict) -> dict[str, int]:
    """The fields of :func:`backbone_shape` that name a tier (every one but ``vocab_size``)."""
    shape = backbone_shape(config)
    return {key: shape[key] for key in TIER_KEYS}


def tier_of(config: PicoConfig | dict) -> str | None:
    """The paper tier whose shape ``config`` has (whatever its vocabulary), or None for a
    custom shape."""
    shape = tier_shape(config)
    for size in SIZES:
        if tier_shape(config_for(size)) == shape:
            return size
    return None


def check_size(config: PicoConfig | dict, size: str | None, where: str) -> None:
    """Raise if the backbone at ``where`` is not of tier ``size`` (no check when None)."""
    if size is None:
        return
    want, got = tier_shape(config_for(size)), tier_shape(config)
    diffs = [f"{k} {got[k]} (a {size} backbone has {want[k]})" for k in want if want[k] != got[k]]
    if diffs:
        actual = tier_of(config)
        what = f"a {actual} backbone" if actual else "a backbone of a custom shape"
        raise PicomamlError(
            f"backbone {where} is {what}, but the fine-tuning config says size: {size}: "
            + "; ".join(diffs)
            + ". Fix `size` (or set it to null) or pass the right backbone"
        )


def load_backbone(
    path: str | Path, size: str | None = None
) -> tuple[PicoDecoder, ResolvedBackbone]:
    """Resolve and load a backbone, checking its tier against ``size`` before loading weights."""
    resolved = resolve_backbone(path)
    where = resolved.requested if resolved.hub else str(resolved.folder)
    check_size(read_pico_config(resolved.folder), size, where)
    return load_pico(resolved.folder), resolved


def recorded_backbone_folder(run: dict[str, Any]) -> Path:
    """The backbone folder a finished run (its ``run.json``) used: the recorded path, or, for
    a Hub backbone whose cached copy has gone, the recorded commit fetched again."""
    folder = Path(run["backbone"])
    hub = run.get("backbone_hub")
    if (folder / layout.PICO_WEIGHTS).is_file() or not isinstance(hub, dict):
        return folder
    if not hub.get("pinned"):
        return folder
    return fetch_checkpoint(str(hub["pinned"])).folder

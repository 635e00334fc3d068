"""Data parallelism: 2 CPU processes (gloo DDP) give the parameters of 1 process.

Same global batch (micro-batch 2 per rank x 2 ranks vs 4 in one process, 2
accumulation steps), same seeds: after 3 optimizer steps the backbone and the meta
head must agree within 1e-5 for AR-only, MAML-only and mixed runs. One launch of
two processes runs all three variants, which keeps the test around half a minute.

AdamW's ``eps`` is raised to 1e-6 here: with the default 1e-8, Adam divides a
gradient that is zero up to rounding (a near-cancelling sum over positions, e.g. a
vocabulary row of a token absent from the batch) by its own magnitude, turning
summation-order noise of 1e-12 into parameter differences of up to the learning rate.
The gradients themselves agree; the larger eps only stops that amplification.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from picomaml.model import PicoConfig, PicoDecoder
from picomaml.pretrain.trainer import ddp_strategy, run_pretraining
from picomaml.seeding import seed_everything
from tests.fixtures import FIXTURE_DATA
from tests.pretrain.tiny import small_corpus, tiny_config

ADAM = ("training.eps=1.0e-6",)
VARIANTS = {
    "ar": ("meta.rho=0.0",),
    "maml": ("meta.rho=1.0", "meta.learner=query_only"),
    "mixed": ("meta.rho=0.5",),
    # Support gradient: the all-gather's backward must sum the shards' gradients.
    "proto": ("meta.rho=1.0", "meta.learner=proto_maml", "meta.learn_logit_scale=true"),
}


def _two_rank_worker(fabric, jobs: list[tuple[object, str]]) -> None:
    for cfg, run_dir in jobs:
        run_pretraining(cfg, run_dir, fabric=fabric, data_root=FIXTURE_DATA)


def _final(run_dir: Path) -> dict[str, torch.Tensor]:
    step = run_dir / "checkpoints" / "step_3"
    tensors = load_file(str(step / "model.safetensors"))
    tensors.update({f"head.{k}": v for k, v in load_file(str(step / "head.safetensors")).items()})
    return tensors


def test_two_processes_match_one(tmp_path: Path, fixture_data_root: Path) -> None:
    from lightning.fabric import Fabric

    corpus = small_corpus(fixture_data_root, tmp_path / "corpus")
    cache = tmp_path / "cache"
    single = Fabric(accelerator="cpu", devices=1)
    single.launch()
    jobs = []
    for name, rho in VARIANTS.items():
        cfg1 = tiny_config(corpus, cache, *rho, "training.micro_batch_size=4", *ADAM)
        run_pretraining(cfg1, tmp_path / f"one-{name}", fabric=single, data_root=FIXTURE_DATA)
        cfg2 = tiny_config(corpus, cache, *rho, "training.micro_batch_size=2", *ADAM)
        jobs.append((cfg2, str(tmp_path / f"two-{name}")))

    fabric = Fabric(accelerator="cpu", devices=2, strategy=ddp_strategy(start_method="spawn"))
    fabric.launch(_two_rank_worker, jobs)

    for name in VARIANTS:
        one, two = _final(tmp_path / f"one-{name}"), _final(tmp_path / f"two-{name}")
        assert one.keys() == two.keys()
        for key in one:
            diff = (one[key] - two[key]).abs().max().item()
            assert diff <= 1e-5, f"{name}: {key} differs by {diff}"
    # MAML-only never uses the vocabulary projection: no gradient, so AdamW leaves it
    # exactly at its initial value, on one process and under DDP alike.
    seed_everything(0)
    init = PicoDecoder(PicoConfig(d_model=48, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=32))
    key = "pico_decoder.de_embedding_proj.weight"
    for run in ("one-maml", "two-maml", "one-proto", "two-proto"):
        assert torch.equal(_final(tmp_path / run)[key], init.de_embedding_proj.weight.detach())
    # The runs did train, and differently per branch mix (equality above is not vacuous).
    ar, maml = _final(tmp_path / "one-ar"), _final(tmp_path / "one-maml")
    key = "pico_decoder.layers.0.attention.q_proj.weight"
    assert (ar[key] - maml[key]).abs().max() > 1e-4
    assert (ar["head.body.0.weight"] - maml["head.body.0.weight"]).abs().max() > 1e-4
    proto = _final(tmp_path / "one-proto")
    assert (proto[key] - maml[key]).abs().max() > 1e-5  # the learners differ
    assert proto["head.log_scale"] != 0  # the learned scale moved from log(1)

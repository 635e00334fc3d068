"""Typed pretraining configuration (``configs/pretrain/*.yaml``).

Why typed dataclasses: the vanilla and MAML presets must differ *only* in
``meta.enabled``, and a misspelt key must never fall back silently to a default.
Every section below is loaded through :func:`picomaml.config.load_config`, so an
unknown key, a wrong type or an inconsistent value is a :class:`PicomamlError`
naming the key.

Path rule (``data.corpus``, ``data.valid``; :func:`picomaml.data.paths.resolve_data_path`):
an absolute path (or one starting with
``~``) is used as is; a path starting with ``./`` or ``../`` is relative to the
current directory; any other relative path is looked up under the data root
(``--data-dir`` / ``$PICOMAML_DATA`` / ``../shared/data`` / ``./data``), so
``corpus/english-mini/train.jsonl.gz`` works from any checkout. For
``data.kind: hub`` the value is a Hugging Face dataset name and is not resolved.
Output paths are never placed under the data root: a relative
``checkpointing.dir`` is relative to the run directory and a relative
``data.cache_dir`` to the current directory.

Inconsistent values raise :class:`PicomamlError` (not ``ValueError``) so the message
keeps the full ``section.key`` name when :func:`load_config` adds the file name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from picomaml.config import Size, load_config
from picomaml.config import check as _check
from picomaml.data.paths import resolve_data_path
from picomaml.errors import PicomamlError
from picomaml.model import PicoConfig, config_for

Precision = Literal["auto", "32-true", "bf16-mixed", "16-mixed", "bf16-true"]


@dataclass
class ModelSection:
    """Backbone shape: a paper tier, optionally with explicit dimensions overriding it."""

    size: Size = "tiny"
    """Paper tier the backbone starts from; the keys below override its dimensions."""
    d_model: int | None = None
    """Model width (null: the tier's)."""
    n_layers: int | None = None
    """Number of transformer blocks (null: the tier's)."""
    n_heads: int | None = None
    """Query heads; must divide d_model (null: the tier's)."""
    n_kv_heads: int | None = None
    """Key/value heads of grouped-query attention (null: the tier's)."""
    activation_hidden_dim: int | None = None
    """Hidden width of the SwiGLU feed-forward (null: the tier's, 4 x d_model)."""
    max_seq_len: int | None = None
    """Longest input (RoPE tables); null: covers data.seq_len and meta.window."""

    def __post_init__(self) -> None:
        for name in ("d_model", "n_layers", "n_heads", "n_kv_heads", "activation_hidden_dim"):
            value = getattr(self, name)
            _check(value is None or value > 0, f"model.{name}", "a positive integer", value)
        if self.d_model is not None and self.n_heads is not None:
            _check(
                self.d_model % self.n_heads == 0,
                "model.n_heads",
                f"a divisor of d_model={self.d_model}",
                self.n_heads,
            )

    def overrides(self) -> dict[str, int]:
        """The explicit dimensions set in the config (passed to ``config_for``)."""
        names = (
            "d_model",
            "n_layers",
            "n_heads",
            "n_kv_heads",
            "activation_hidden_dim",
            "max_seq_len",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def pico_config(self, seq_len: int | None = None) -> PicoConfig:
        """Build the backbone's ``PicoConfig``; ``max_seq_len`` defaults to ``seq_len``."""
        extra = self.overrides()
        if seq_len is not None and "max_seq_len" not in extra:
            extra["max_seq_len"] = seq_len
        return config_for(self.size, **extra)


@dataclass
class DataSection:
    """Where the pretraining tokens come from and how they are packed."""

    corpus: str = "corpus/english-mini/train.jsonl.gz"
    """Training corpus: a path under the path rule (module docstring), or a hub dataset name with
    kind hub."""
    kind: Literal["auto", "jsonl", "text", "parquet", "hub"] = "auto"
    """Corpus format; auto guesses it from the path (.jsonl(.gz), text, a parquet shard folder)."""
    valid: str | None = "corpus/english-mini/valid.jsonl.gz"
    """Held-out split for perplexity in the dynamics log (local even when training streams); null:
    none."""
    seq_len: int = 2048
    """Tokens per packed training row (rows hold seq_len + 1 tokens: inputs and shifted targets)."""
    text_field: str = "text"
    """JSON/parquet/hub field that holds the text."""
    cache_dir: str | None = None
    """Where tokenized rows are cached (null: $PICOMAML_CACHE or the user cache); relative to the
    current directory."""
    max_train_tokens: int | None = None
    """Use only the first N training tokens (whole rows); null: the whole corpus."""

    def __post_init__(self) -> None:
        _check(self.seq_len > 1, "data.seq_len", "an integer > 1", self.seq_len)
        _check(bool(self.corpus), "data.corpus", "a non-empty path or dataset name", self.corpus)
        if self.max_train_tokens is not None:
            _check(
                self.max_train_tokens > 0,
                "data.max_train_tokens",
                "a positive integer or null",
                self.max_train_tokens,
            )

    def corpus_path(self, data_root: str | Path | None) -> str | Path:
        """The training corpus location under the path rule (hub names are returned as is)."""
        if self.kind == "hub":
            return self.corpus
        return resolve_data_path(self.corpus, data_root)

    def valid_path(self, data_root: str | Path | None) -> Path | None:
        """The held-out split, a local file or shard folder even when training streams from
        the hub (so paper-scale runs still log held-out perplexity); ``None`` = none."""
        if self.valid is None:
            return None
        return resolve_data_path(self.valid, data_root)


@dataclass
class RuntimeSection:
    """Lightning Fabric launch settings (the CLI flags ``--devices`` etc. override these).

    ``compile``: ``torch.compile`` the decoder's blocks (:mod:`picomaml.model.compile`);
    ``auto`` = on CUDA only.
    """

    accelerator: Literal["auto", "cpu", "cuda", "gpu", "mps"] = "auto"
    """Fabric accelerator (the CLI's --accelerator overrides it)."""
    devices: int | str = 1
    """Devices per node: a count, -1 for all, or 'auto' (--devices)."""
    num_nodes: int = 1
    """Machines in a multi-node launch (--num-nodes)."""
    strategy: Literal["auto", "ddp", "fsdp", "single_device"] = "auto"
    """Fabric strategy; fsdp is refused (checkpoints are not sharded)."""
    compile: bool | Literal["auto"] = "auto"
    """torch.compile the decoder blocks; auto = on CUDA only."""

    def __post_init__(self) -> None:
        _check(self.num_nodes >= 1, "runtime.num_nodes", "an integer >= 1", self.num_nodes)
        if isinstance(self.devices, int):
            _check(
                self.devices >= 1 or self.devices == -1,
                "runtime.devices",
                "a positive integer, -1 or 'auto'",
                self.devices,
            )


@dataclass
class TrainingSection:
    """Outer optimisation: AdamW, warm-up then cosine decay, gradient accumulation.

    ``batch_size`` is the *effective* number of sequences per optimizer step across all
    ranks; ``micro_batch_size`` is per rank and per forward pass. The accumulation steps
    follow from the world size (:meth:`accumulation_steps`), so the same config gives the
    same optimisation on one CPU or on many GPUs. ``grad_clip`` is the max global L2
    norm of the gradients (backbone and meta head together); ``null`` disables clipping.
    """

    optimizer: Literal["adamw"] = "adamw"
    """The outer optimizer (AdamW, the paper's)."""
    lr: float = 3e-4
    """Peak learning rate after warm-up."""
    min_lr: float = 3e-5
    """Learning rate at the end of the decay (0 <= min_lr <= lr)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW's beta1 and beta2."""
    eps: float = 1e-8
    """AdamW's epsilon."""
    weight_decay: float = 0.1
    """AdamW's decoupled weight decay."""
    warmup_steps: int = 2500
    """Linear warm-up steps (at most max_steps)."""
    max_steps: int = 6000
    """Optimizer steps of the run (the schedule's length)."""
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warm-up down to min_lr."""
    batch_size: int = 1024
    """Sequences per optimizer step across all ranks (a multiple of micro_batch_size x world size).
"""
    micro_batch_size: int = 32
    """Sequences per rank and forward pass; accumulation steps follow."""
    grad_clip: float | None = 1.0
    """Max global L2 norm of backbone and head gradients together; null: no clipping."""
    precision: Precision = "auto"
    """Fabric precision; auto = bf16-mixed on CUDA, 32-true elsewhere."""
    seed: int = 0
    """Seed of the model, head, data order, branch draws and episodes."""

    def __post_init__(self) -> None:
        _check(self.lr > 0, "training.lr", "a positive number", self.lr)
        _check(0 <= self.min_lr <= self.lr, "training.min_lr", "0 <= min_lr <= lr", self.min_lr)
        _check(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            "training.betas",
            "two numbers in [0, 1)",
            self.betas,
        )
        _check(self.weight_decay >= 0, "training.weight_decay", ">= 0", self.weight_decay)
        _check(self.max_steps >= 1, "training.max_steps", "an integer >= 1", self.max_steps)
        _check(
            0 <= self.warmup_steps <= self.max_steps,
            "training.warmup_steps",
            f"an integer in [0, max_steps={self.max_steps}]",
            self.warmup_steps,
        )
        _check(
            self.micro_batch_size >= 1,
            "training.micro_batch_size",
            "an integer >= 1",
            self.micro_batch_size,
        )
        _check(
            self.batch_size >= self.micro_batch_size
            and self.batch_size % self.micro_batch_size == 0,
            "training.batch_size",
            f"a multiple of micro_batch_size={self.micro_batch_size}",
            self.batch_size,
        )
        if self.grad_clip is not None:
            _check(
                self.grad_clip > 0,
                "training.grad_clip",
                "a positive number or null",
                self.grad_clip,
            )

    def accumulation_steps(self, world_size: int = 1) -> int:
        """Micro-batches per optimizer step on each rank: batch / (micro * world)."""
        per_step = self.micro_batch_size * world_size
        if world_size < 1 or self.batch_size % per_step:
            raise PicomamlError(
                f"training.batch_size={self.batch_size} is not divisible by "
                f"micro_batch_size={self.micro_batch_size} x world_size={world_size}; "
                "choose sizes so that batch = micro x accumulation x world"
            )
        return self.batch_size // per_step

    def resolved_precision(self, accelerator_is_cuda: bool) -> str:
        """``auto`` -> ``bf16-mixed`` on CUDA, ``32-true`` elsewhere (the paper's setting)."""
        if self.precision != "auto":
            return self.precision
        return "bf16-mixed" if accelerator_is_cuda else "32-true"


@dataclass
class MetaSection:
    """First-order MAML on SMLMT episodes (paper section 2.3 and Table 6).

    ``learner`` chooses how an episode's loss reaches the backbone
    (:mod:`picomaml.pretrain.maml`, docs/pretraining.md "Episode learners"):
    ``protonet`` (default: prototype logits, no inner loop, gradient through both the
    support and the query windows), ``proto_maml`` (first-order Proto-MAML: the inner
    loop, with gradient through the support features, their centre and the
    prototype-initialised output layer) or ``query_only`` (support side without
    gradient: the learner before issue 19, which kept features collapsed).
    ``metric``: ``euclidean`` prototypes, or ``cosine`` (unit body outputs, prototype
    directions); ``logit_scale`` multiplies the logits (``null``: 1 for euclidean, 10
    for cosine) and is a learned parameter with ``learn_logit_scale``.
    ``heldout_share`` of the candidate words (by a stable hash) is never a class, so
    the probe can score words no episode trained on.
    ``rho`` is the probability that a micro-batch is a meta episode. ``head_layers`` is
    the number of hidden Linear->ReLU->Dropout blocks of the persistent MLP body.
    ``output_init`` chooses the N-way output layer: ``prototypes`` (Proto-MAML, fresh per
    episode from the support set's class means; the default because it is the only start
    from which the paper's inner loop learns, see docs/pretraining.md), ``zeros`` or
    ``xavier`` (fresh per episode), or ``persistent`` (a meta-learned parameter of the
    head, the paper's Algorithm 1 read literally). ``representation`` is where a window's
    feature is read (see :func:`picomaml.pretrain.meta_head.window_features`);
    ``inner_dropout`` and ``query_dropout`` apply ``head_dropout`` in the inner loop and on
    the query pass (off by default: measured to slow meta-learning); ``center_features``
    subtracts the support set's mean feature, after ``normalize_features`` scaled each
    feature to unit RMS (see :mod:`picomaml.pretrain.maml`); ``loss_weight`` scales
    the meta loss in the outer update. Candidate words are
    word-initial vocabulary tokens whose count in the SMLMT token pool lies in
    ``[min_word_count, max_word_frequency * pool_tokens]``; with ``whole_words`` an
    occurrence that is only the start of a longer word (``' John'`` + ``'son'``) is
    neither counted nor used as an example.
    """

    enabled: bool = False
    """Build the meta head and run SMLMT episodes (the only key the vanilla and MAML presets differ
    in)."""
    learner: Literal["query_only", "proto_maml", "protonet"] = "protonet"
    """How an episode's loss reaches the backbone (docs/pretraining.md, Episode learners)."""
    metric: Literal["euclidean", "cosine"] = "euclidean"
    """Prototype distance: euclidean, or cosine on unit body outputs."""
    logit_scale: float | None = None
    """Factor on the episode logits; null: 1 for euclidean, 10 for cosine."""
    learn_logit_scale: bool = False
    """Make the logit scale a learned head parameter."""
    heldout_share: float = 0.1
    """Share of candidate words (by a stable hash) that are never a class, kept for the probe."""
    rho: float = 0.5
    """Probability that a micro-batch is a meta episode rather than an AR batch."""
    branch_draw: Literal["per_microbatch", "per_step"] = "per_microbatch"
    """Draw the AR/meta branch per micro-batch, or once per optimizer step."""
    ways: int = 32
    """Classes (words) per episode, N."""
    shots: int = 4
    """Support windows per class, K."""
    queries: int = 4
    """Query windows per class."""
    window: int = 128
    """Tokens per episode window (at most data.seq_len)."""
    inner_steps: int = 10
    """SGD steps of the inner loop on copies of the head (0: none)."""
    inner_lr: float = 1e-3
    """Learning rate of the inner loop."""
    head_layers: int = 4
    """Hidden Linear-ReLU-Dropout blocks of the persistent head body."""
    head_hidden: int = 128
    """Width of the head body's hidden layers."""
    head_dropout: float = 0.1
    """Dropout in the head body (applied where inner_dropout / query_dropout say)."""
    head_init: Literal["xavier", "kaiming", "normal"] = "xavier"
    """Initialisation of the head body's linear layers."""
    output_init: Literal["prototypes", "zeros", "xavier", "persistent"] = "prototypes"
    """The N-way output layer: prototypes (Proto-MAML), zeros or xavier (fresh per episode), or
    persistent."""
    representation: Literal["mask", "last", "after_mask", "before_mask"] = "mask"
    """Where a window's feature is read (picomaml.pretrain.meta_head.window_features)."""
    inner_dropout: bool = False
    """Apply head_dropout in the inner loop (off: measured to slow meta-learning)."""
    query_dropout: bool = False
    """Apply head_dropout on the query pass."""
    center_features: bool = True
    """Subtract the support set's mean feature from support and query features."""
    normalize_features: bool = True
    """Scale each feature to unit RMS before centring."""
    loss_weight: float = 1.0
    """Factor on the meta loss in the outer update."""
    min_word_count: int = 32
    """Fewest occurrences in the pool for a word to be a class (at least shots + queries)."""
    max_word_frequency: float = 5e-4
    """Most occurrences for a class word, as a fraction of the pool's tokens."""
    allow_digits: bool = False
    """Let words containing digits be classes."""
    allow_punct: bool = False
    """Let punctuation tokens be classes."""
    whole_words: bool = True
    """Ignore occurrences that only start a longer word (' John' + 'son')."""
    pool_tokens: int | None = 4_000_000
    """Tokens (whole rows, in file order) the SMLMT sampler indexes; null: all."""
    head_lr: float | None = None
    """Outer learning rate of the meta head; null: training.lr."""

    def __post_init__(self) -> None:
        _check(0.0 <= self.rho <= 1.0, "meta.rho", "a probability in [0, 1]", self.rho)
        _check(self.ways >= 2, "meta.ways", "an integer >= 2", self.ways)
        _check(self.shots >= 1, "meta.shots", "an integer >= 1", self.shots)
        _check(self.queries >= 1, "meta.queries", "an integer >= 1", self.queries)
        _check(self.window >= 2, "meta.window", "an integer >= 2", self.window)
        _check(self.inner_steps >= 0, "meta.inner_steps", "an integer >= 0", self.inner_steps)
        _check(self.inner_lr >= 0, "meta.inner_lr", "a number >= 0", self.inner_lr)
        _check(self.head_layers >= 0, "meta.head_layers", "an integer >= 0", self.head_layers)
        _check(self.head_hidden >= 1, "meta.head_hidden", "an integer >= 1", self.head_hidden)
        _check(
            0.0 <= self.head_dropout < 1.0,
            "meta.head_dropout",
            "a probability in [0, 1)",
            self.head_dropout,
        )
        _check(
            self.min_word_count >= self.shots + self.queries,
            "meta.min_word_count",
            f"at least shots + queries = {self.shots + self.queries}",
            self.min_word_count,
        )
        _check(
            0.0 < self.max_word_frequency <= 1.0,
            "meta.max_word_frequency",
            "a fraction in (0, 1]",
            self.max_word_frequency,
        )
        if self.pool_tokens is not None:
            _check(self.pool_tokens > 0, "meta.pool_tokens", "a positive integer", self.pool_tokens)
        if self.head_lr is not None:
            _check(self.head_lr > 0, "meta.head_lr", "a positive number or null", self.head_lr)
        _check(self.loss_weight >= 0, "meta.loss_weight", "a number >= 0", self.loss_weight)
        _check(
            0.0 <= self.heldout_share < 1.0,
            "meta.heldout_share",
            "a fraction in [0, 1)",
            self.heldout_share,
        )
        if self.logit_scale is not None:
            _check(
                self.logit_scale > 0,
                "meta.logit_scale",
                "a positive number or null",
                self.logit_scale,
            )
        _check(
            self.learner == "query_only" or self.output_init == "prototypes",
            "meta.output_init",
            f"prototypes with meta.learner={self.learner} (zeros, xavier and persistent "
            "apply to the query_only learner)",
            self.output_init,
        )

    def scale(self) -> float:
        """The logit scale's value (its initial value when it is learned)."""
        if self.logit_scale is not None:
            return self.logit_scale
        return 10.0 if self.metric == "cosine" else 1.0


@dataclass
class CheckpointingSection:
    """Checkpoints under ``RUN_DIR/checkpoints/step_N/`` every ``every`` optimizer steps.

    ``keep_last`` deletes whole step folders beyond the newest N. ``keep_state_last`` keeps
    every folder's weights (the checkpoint sweep needs them) but deletes the optimizer/RNG
    state (twice the weights' size) of all but the newest N, so those steps can be analysed
    but not resumed from. ``null`` keeps everything.
    """

    every: int = 100
    """Optimizer steps between checkpoints (the last step always saves one)."""
    dir: str = "checkpoints"
    """Checkpoint folder, relative to the run directory."""
    keep_last: int | None = None
    """Keep only the newest N step folders; null: all."""
    keep_state_last: int | None = None
    """Keep optimizer/RNG state only in the newest N folders (weights stay); null: all."""

    def __post_init__(self) -> None:
        _check(self.every >= 1, "checkpointing.every", "an integer >= 1", self.every)
        for name in ("keep_last", "keep_state_last"):
            value = getattr(self, name)
            if value is not None:
                _check(value >= 1, f"checkpointing.{name}", ">= 1 or null", value)


@dataclass
class DynamicsSection:
    """Learning dynamics (perplexity, SVD spectra, PER) every ``every`` optimizer steps."""

    enabled: bool = True
    """Log learning dynamics (perplexity, SVD spectra, proportional effective rank)."""
    every: int = 100
    """Optimizer steps between dynamics measurements."""
    layers: list[str] = field(
        default_factory=lambda: ["attention.v_proj", "attention.o_proj", "swiglu.w_2"]
    )
    """Weight names, per block, whose spectra are measured."""
    eval_batches: int = 8
    """Held-out batches for the perplexity."""
    eval_batch_size: int = 16
    """Rows per held-out batch."""
    save_tensors: bool = True
    """Save the measured tensors into the checkpoint folders."""

    def __post_init__(self) -> None:
        _check(self.every >= 1, "dynamics.every", "an integer >= 1", self.every)
        _check(self.eval_batches >= 1, "dynamics.eval_batches", ">= 1", self.eval_batches)
        _check(self.eval_batch_size >= 1, "dynamics.eval_batch_size", ">= 1", self.eval_batch_size)


@dataclass
class LoggingSection:
    """Console/metrics logging cadence; TensorBoard and W&B are opt-in."""

    every: int = 10
    """Optimizer steps per logging window (metrics.jsonl, progress bar, loggers)."""
    progress_bar: bool = True
    """Show a progress bar on a terminal."""
    tensorboard: bool = False
    """Also log to TensorBoard (optional install)."""
    wandb: bool = False
    """Also log to Weights & Biases (optional install)."""
    wandb_project: str | None = None
    """W&B project name (null: W&B's default)."""

    def __post_init__(self) -> None:
        _check(self.every >= 1, "logging.every", "an integer >= 1", self.every)


@dataclass
class PretrainConfig:
    """The whole pretraining run; ``configs/pretrain/*.yaml`` map onto this one to one."""

    model: ModelSection = field(default_factory=ModelSection)
    """The backbone's shape."""
    data: DataSection = field(default_factory=DataSection)
    """The training and held-out corpus."""
    runtime: RuntimeSection = field(default_factory=RuntimeSection)
    """How Fabric launches the run."""
    training: TrainingSection = field(default_factory=TrainingSection)
    """The outer optimisation."""
    meta: MetaSection = field(default_factory=MetaSection)
    """The MAML branch and its episodes."""
    checkpointing: CheckpointingSection = field(default_factory=CheckpointingSection)
    """Checkpoint cadence and retention."""
    dynamics: DynamicsSection = field(default_factory=DynamicsSection)
    """Learning-dynamics measurements."""
    logging: LoggingSection = field(default_factory=LoggingSection)
    """Logging cadence and optional loggers."""

    def __post_init__(self) -> None:
        if self.model.max_seq_len is not None:
            _check(
                self.model.max_seq_len >= self.data.seq_len,
                "model.max_seq_len",
                f"at least data.seq_len={self.data.seq_len}",
                self.model.max_seq_len,
            )
        if self.meta.enabled:
            _check(
                self.meta.window <= self.data.seq_len,
                "meta.window",
                f"at most data.seq_len = {self.data.seq_len} (the model's input length)",
                self.meta.window,
            )


def load_pretrain_config(
    path: str | Path | None, overrides: list[str] | None = None
) -> PretrainConfig:
    """Load a pretraining config from YAML plus ``section.key=value`` overrides."""
    return load_config(PretrainConfig, path, overrides)


def pico_config(cfg: PretrainConfig) -> PicoConfig:
    """The backbone shape; ``max_seq_len`` defaults to cover both LM rows and episode windows."""
    try:
        return cfg.model.pico_config(max(cfg.data.seq_len, cfg.meta.window))
    except PicomamlError as exc:
        raise PicomamlError(f"model: {exc}") from exc


__all__ = [
    "CheckpointingSection",
    "DataSection",
    "DynamicsSection",
    "LoggingSection",
    "MetaSection",
    "ModelSection",
    "PretrainConfig",
    "RuntimeSection",
    "TrainingSection",
    "load_pretrain_config",
    "pico_config",
]

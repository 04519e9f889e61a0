"""The arguments of a training run besides `TrainingArguments`: data, model (and the generative head's), evaluation,
and the Trainer defaults.

`ModelArguments`' model fields take their defaults from `GenRecConfig` itself, and `GenerativeArguments`' from
`GenRecGenerativeConfig`, so the command line and the configs cannot disagree.
"""

from dataclasses import dataclass, field, fields
from typing import Any

import torch

from ..configuration_genrec import FUSION_MODES, LOSS_NEGATIVES_CHOICES, SAMPLED_LOSS_ABOVE_ITEMS, GenRecConfig
from ..configuration_genrec_generative import GenRecGenerativeConfig
from ..data.hub_files import AMAZON_CATEGORIES, AMAZON_REVIEWS_2023
from ..data.processing import SPLIT_PROTOCOLS
from ..encoders import ENCODER_DTYPES

_CONFIG = GenRecConfig()
_GENERATIVE_CONFIG = GenRecGenerativeConfig()
HEADS = ("dense", "generative")


def config_field(
    name: str, help: str | None = None, choices: tuple[str, ...] | None = None, config: Any = _CONFIG
) -> Any:
    """An arguments field that is the field `name` of `config` (default `GenRecConfig`), with the config's default."""
    metadata = {"help": help} if help else {}
    return field(
        default=getattr(config, name), metadata={**metadata, "choices": list(choices)} if choices else metadata
    )


def generative_field(name: str, help: str | None = None) -> Any:
    """A `GenerativeArguments` field that is the `GenRecGenerativeConfig` field `name`, with its default."""
    return config_field(name, help, config=_GENERATIVE_CONFIG)


def _set_config_fields(arguments: Any, config_class: type) -> dict[str, Any]:
    """The fields of the `arguments` dataclass that `config_class` declares, without those left unset (`None`)."""
    names = {f.name for f in fields(config_class)} - {"item_encoder_type"}
    values = {f.name: getattr(arguments, f.name) for f in fields(arguments) if f.name in names}
    return {name: value for name, value in values.items() if value is not None}


@dataclass
class DataArguments:
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder written by scripts/prepare_data.py (splits/, items/, stats.json)."}
    )
    reviews: list[str] | None = field(
        default=None,
        metadata={
            "help": "Review files or globs (.jsonl, .csv, .gz, hf://, official split files); prepared on the fly."
        },
    )
    meta: list[str] | None = field(default=None, metadata={"help": "Raw metadata files matching --reviews."})
    categories: list[str] | None = field(
        default=None,
        metadata={
            "help": f"Amazon Reviews 2023 categories downloaded from the Hub dataset {AMAZON_REVIEWS_2023} (cached).",
            "choices": list(AMAZON_CATEGORIES),
        },
    )
    official_split: bool = field(
        default=False,
        metadata={"help": "With --categories: download the official 5-core split of --split instead of raw reviews."},
    )
    images_dir: str | None = field(default=None, metadata={"help": "Local item photos named <parent_asin>.<ext>."})
    kcore: int = field(default=5, metadata={"help": "Iterative k-core on users and items when preparing raw files."})
    split: str = field(default="leave_one_out", metadata={"help": "Split protocol.", "choices": list(SPLIT_PROTOCOLS)})
    synthetic: bool = field(
        default=False, metadata={"help": "Use the embedded SYNTHETIC sample when no data is given."}
    )


def item_encoder_dtype_field() -> Any:
    """`--item_encoder_dtype`, of training and of `precompute_embeddings.py`."""
    return field(
        default="float32",
        metadata={
            "help": "Compute type of the frozen item encoder (features are kept in float32 either way): bfloat16 "
            "encodes faster on GPUs and on CPUs with bf16 instructions (AVX512-BF16, AMX).",
            "choices": list(ENCODER_DTYPES),
        },
    )


@dataclass
class ModelArguments:
    head: str = field(
        default="dense",
        metadata={
            "help": "dense (item vectors, full-catalog scores) or generative (semantic IDs, constrained beam "
            "search; sized by the GenerativeArguments flags).",
            "choices": list(HEADS),
        },
    )
    item_encoder: str = field(
        default=_CONFIG.item_encoder_name_or_path,
        metadata={
            "help": "CLIP (Hub id or local folder), a text encoder (e.g. sentence-transformers/all-MiniLM-L6-v2), "
            "or 'none' for an ID-only model (with --fusion id)."
        },
    )
    item_encoder_type: str | None = field(
        default=None, metadata={"help": "Read from the encoder's config when not given.", "choices": ["clip", "text"]}
    )
    item_encoder_dtype: str = item_encoder_dtype_field()
    item_text_max_length: int | None = field(
        default=None,
        metadata={
            "help": "Tokens of each item's text the encoder reads (default: the encoder's own, 77 for CLIP, 256 for "
            "a sentence-transformers model; all-MiniLM-L6-v2 was trained on 128). The encoder's cost grows with it."
        },
    )
    fusion: str = config_field("fusion", "How content and ID embeddings are combined.", FUSION_MODES)
    hidden_size: int = config_field("hidden_size")
    num_hidden_layers: int = config_field("num_hidden_layers")
    num_attention_heads: int = config_field("num_attention_heads")
    intermediate_size: int | None = field(default=None, metadata={"help": "Feed-forward width (default 4 x hidden)."})
    max_seq_len: int | None = field(
        default=None, metadata={"help": "Most recent history items the model reads (dense: 50, generative: 20)."}
    )
    hidden_dropout_prob: float = config_field("hidden_dropout_prob")
    attention_dropout_prob: float = config_field("attention_dropout_prob")
    id_dropout: float = config_field("id_dropout")
    loss_negatives: str = field(
        default="auto",
        metadata={
            "help": f"full (whole catalog), sampled (in-batch + uniform negatives, log-Q), or auto: full up to "
            f"{SAMPLED_LOSS_ABOVE_ITEMS:,} catalog items, sampled above (the run's log, metrics.json and card say "
            "which and why).",
            "choices": list(LOSS_NEGATIVES_CHOICES),
        },
    )
    num_sampled_negatives: int = config_field("num_sampled_negatives")
    feature_cache_dir: str | None = field(
        default=None, metadata={"help": "Cache of item content features; defaults to <output_dir>/feature_cache."}
    )
    feature_batch_size: int = 64

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"--head {self.head!r} is not one of {HEADS}")

    def config_kwargs(self) -> dict[str, Any]:
        """The `GenRecConfig` fields these arguments set (the encoder's name and type are the encoder's own)."""
        return _set_config_fields(self, GenRecConfig)


@dataclass
class GenerativeArguments:
    """The generative head (`--head generative`): semantic IDs and the GPT-2 decoder that generates them."""

    num_code_levels: int = generative_field("num_code_levels", "Residual k-means levels before the final code.")
    codebook_size: int = generative_field("codebook_size", "Codes per level.")
    num_beams: int = generative_field("num_beams", "Beams of recommendation and evaluation.")
    item_vector_inputs: bool = generative_field(
        "item_vector_inputs", "Add each history item's quantized vector (projected) at its last code token."
    )
    n_embd: int = generative_field("n_embd", "Decoder width.")
    n_layer: int = generative_field("n_layer", "Decoder layers.")
    n_head: int = generative_field("n_head", "Attention heads per layer.")
    n_inner: int = generative_field("n_inner", "Feed-forward width.")
    resid_pdrop: float = generative_field("resid_pdrop", "Dropout on residual branches.")
    embd_pdrop: float = generative_field("embd_pdrop", "Dropout on token + position embeddings.")
    attn_pdrop: float = generative_field("attn_pdrop", "Dropout on attention probabilities.")
    kmeans_iterations: int = field(default=25, metadata={"help": "Lloyd iterations per residual k-means level."})
    semantic_ids_from: str | None = field(
        default=None,
        metadata={
            "help": "A trained dense GenRec model with content (folder or Hub id, same data and item encoder) whose "
            "fused item vectors are quantized instead of the content features, so that items bought together share "
            "codes as alike items do. Default: quantize the content features."
        },
    )

    def config_kwargs(self) -> dict[str, Any]:
        """The `GenRecGenerativeConfig` fields these arguments set."""
        return _set_config_fields(self, GenRecGenerativeConfig)


@dataclass
class EvaluationArguments:
    exclude_history: bool = field(
        default=True,
        metadata={
            "help": "Remove history items from the ranking (the default; the target is never removed). "
            "--exclude_history false ranks all items (the protocol of TIGER-style generative numbers)."
        },
    )
    bootstrap_samples: int = field(default=1000, metadata={"help": "Resamples of the 95%% bootstrap CIs."})
    max_eval_samples: int | None = field(
        default=None,
        metadata={
            "help": "Validate during training on this many valid examples (a fixed random subset drawn with --seed), "
            "e.g. for the generative head, whose beam search is slow; the final report uses every example."
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop once valid NDCG@10 has not improved for this many evaluations in a row (transformers' "
            "EarlyStoppingCallback; the best checkpoint is the model kept). Default: train every epoch."
        },
    )
    weight_averaging_epochs: float | None = field(
        default=None,
        metadata={
            "help": "Evaluate, keep and save an exponential moving average of the weights over about this many "
            "epochs; 0 keeps the trained weights. Default: 3 (test NDCG@10 +2.5%% on Beauty for the dense head, +10%% "
            "on Scientific, 3 seeds, for the generative head), 0 under FSDP."
        },
    )


# `TrainingArguments` values of a GenRec run, unless given: per-epoch evaluation keeping the best checkpoint by
# valid NDCG@10, batches drawn at random (length-bucketed batches train ~1.5x faster per epoch but converge much
# more slowly: valid NDCG@10 0.048 vs 0.066 after 4 Beauty epochs, benchmarks/README.md), and the columns the collator
# reads.
TRAINING_DEFAULTS = {
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "load_best_model_at_end": True,
    "metric_for_best_model": "ndcg@10",
    "greater_is_better": True,
    "save_total_limit": 2,
    "remove_unused_columns": False,
    "train_sampling_strategy": "random",
    "logging_steps": 10,
    "learning_rate": 1e-3,
    "num_train_epochs": 20,
    "per_device_train_batch_size": 128,
    "per_device_eval_batch_size": 256,
    "weight_decay": 0.0,
    "warmup_steps": 0,
    "dataloader_pin_memory": torch.accelerator.is_available(),  # without an accelerator, pinning only warns
}

__all__ = [
    "HEADS",
    "TRAINING_DEFAULTS",
    "DataArguments",
    "EvaluationArguments",
    "GenerativeArguments",
    "ModelArguments",
]

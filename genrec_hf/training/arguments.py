"""The arguments of a training run besides `TrainingArguments`: data, model and evaluation, and the Trainer defaults.

`ModelArguments`' model fields take their defaults from `GenRecConfig` itself, so the command line and the config
cannot disagree.
"""

from dataclasses import dataclass, field, fields
from typing import Any

import torch

from ..configuration_genrec import FUSION_MODES, NEGATIVE_SAMPLING_MODES, GenRecConfig
from ..data.hub_files import AMAZON_CATEGORIES, AMAZON_REVIEWS_2023
from ..data.processing import SPLIT_PROTOCOLS

_CONFIG = GenRecConfig()


def config_field(name: str, help: str | None = None, choices: tuple[str, ...] | None = None) -> Any:
    """A `ModelArguments` field that is the `GenRecConfig` field `name`, with the config's default."""
    metadata = {"help": help} if help else {}
    return field(
        default=getattr(_CONFIG, name), metadata={**metadata, "choices": list(choices)} if choices else metadata
    )


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


@dataclass
class ModelArguments:
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
    fusion: str = config_field("fusion", "How content and ID embeddings are combined.", FUSION_MODES)
    hidden_size: int = config_field("hidden_size")
    num_hidden_layers: int = config_field("num_hidden_layers")
    num_attention_heads: int = config_field("num_attention_heads")
    intermediate_size: int | None = field(default=None, metadata={"help": "Feed-forward width (default 4 x hidden)."})
    max_seq_len: int = config_field("max_seq_len")
    hidden_dropout_prob: float = config_field("hidden_dropout_prob")
    attention_dropout_prob: float = config_field("attention_dropout_prob")
    id_dropout: float = config_field("id_dropout")
    loss_negatives: str = config_field(
        "loss_negatives", "full (whole catalog) or sampled (log-Q).", NEGATIVE_SAMPLING_MODES
    )
    num_sampled_negatives: int = config_field("num_sampled_negatives")
    feature_cache_dir: str | None = field(
        default=None, metadata={"help": "Cache of item content features; defaults to <output_dir>/feature_cache."}
    )
    feature_batch_size: int = 64

    def config_kwargs(self) -> dict[str, Any]:
        """The `GenRecConfig` fields these arguments set (the encoder's name and type are the encoder's own)."""
        names = {f.name for f in fields(GenRecConfig)} - {"item_encoder_type"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in names}


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

__all__ = ["TRAINING_DEFAULTS", "DataArguments", "EvaluationArguments", "ModelArguments"]

"""Configuration of the GenRec next-item recommender."""

import re
from functools import partial

from transformers import PreTrainedConfig

FUSION_MODES = ("gate", "sum", "id", "content")
ITEM_ENCODER_TYPES = ("clip", "text")
NEGATIVE_SAMPLING_MODES = ("full", "sampled")
LOSS_NEGATIVES_CHOICES = ("auto", *NEGATIVE_SAMPLING_MODES)  # "auto" becomes one of the modes by the catalog size
# `loss_negatives="auto"` trains catalogs larger than this with the sampled softmax. Measured (benchmarks/README.md,
# "Loss by catalog size"): a full-softmax step costs 0.9x a sampled one at 4,385 items, 2.0x at 12,101, 3.1x at
# 25,000 and 14.5x at 225,000 (and its memory grows with the catalog), while it ranks a few percent better (valid
# NDCG@10 +3% on Scientific's 4,385 items, +4% on Beauty's 12,101).
SAMPLED_LOSS_ABOVE_ITEMS = 25_000
_WHY = "(benchmarks/README.md, Loss by catalog size)"


def choose_loss_negatives(num_items: int) -> tuple[str, str]:
    """The negatives `loss_negatives="auto"` trains a catalog of `num_items` items with, and the reason, as the
    training log, `metrics.json` and the model card state it."""
    if num_items > SAMPLED_LOSS_ABOVE_ITEMS:
        return "sampled", (
            f"sampled softmax chosen automatically: {num_items:,} catalog items is over {SAMPLED_LOSS_ABOVE_ITEMS:,}, "
            f"above which a full-softmax step costs over 3x a sampled one for a few percent of NDCG@10 {_WHY}"
        )
    return "full", (
        f"full softmax chosen automatically: {num_items:,} catalog items is at most {SAMPLED_LOSS_ABOVE_ITEMS:,}, "
        f"where a full-softmax step costs at most ~3x a sampled one and ranks a few percent better {_WHY}"
    )


def check_field(config, condition: bool, field: str, reason: str) -> None:
    """Raises a `ValueError` naming the config class, the field, its value and `reason`, unless `condition` holds."""
    if not condition:
        raise ValueError(f"{type(config).__name__}.{field}={getattr(config, field)!r} is invalid: {reason}")


class GenRecConfig(PreTrainedConfig):
    r"""
    Configuration of a [`GenRecModel`]: an item tower that fuses content features with learned item-ID embeddings,
    and a causal Transformer user tower whose output at every position is scored against the whole item catalog.

    Item index 0 is padding; catalog items take the indices `1..num_items`. The first `num_id_items` of them have a
    learned ID embedding; items appended later (cold items) are embedded from content alone.

    Args:
        num_items (`int`, *optional*, defaults to 1):
            Number of items in the catalog (without the padding index).
        num_id_items (`int`, *optional*):
            Number of items with a learned ID embedding. Defaults to `num_items`; stays fixed when items are added.
        hidden_size (`int`, *optional*, defaults to 64):
            Dimension of item vectors and of the user tower.
        num_hidden_layers (`int`, *optional*, defaults to 2):
            Number of Transformer layers in the user tower.
        num_attention_heads (`int`, *optional*, defaults to 2):
            Attention heads per layer; must divide `hidden_size`.
        intermediate_size (`int`, *optional*):
            Width of the feed-forward layers. Defaults to `4 * hidden_size`.
        max_seq_len (`int`, *optional*, defaults to 50):
            Longest history the user tower reads; longer histories keep their most recent items.
        hidden_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on embeddings, residual branches and feed-forward activations.
        attention_dropout_prob (`float`, *optional*, defaults to 0.1):
            Dropout on attention probabilities.
        layer_norm_eps (`float`, *optional*, defaults to 1e-6):
            Epsilon of every LayerNorm.
        initializer_range (`float`, *optional*, defaults to 0.02):
            Standard deviation of the normal initialiser.
        text_feature_dim (`int`, *optional*, defaults to 512):
            Dimension of the item encoder's text features (0: no text features).
        image_feature_dim (`int`, *optional*, defaults to 512):
            Dimension of the item encoder's image features (0: no image features, e.g. a text-only encoder).
        fusion (`str`, *optional*, defaults to `"gate"`):
            How content and ID vectors are combined: `"gate"` (learned element-wise gate that sees both vectors and
            whether the ID is known), `"sum"`, `"id"` (ID only, SASRec-like) or `"content"` (content only).
        id_dropout (`float`, *optional*, defaults to 0.1):
            Training-time probability of hiding an item's ID, which teaches the gate to fall back to content.
        loss_negatives (`str`, *optional*, defaults to `"auto"`):
            `"full"`: InfoNCE against the whole catalog (computed in chunks). `"sampled"`: in-batch positives plus
            `num_sampled_negatives` uniformly sampled items, with the log-Q correction. `"auto"` becomes `"full"` for
            catalogs of up to `SAMPLED_LOSS_ABOVE_ITEMS` items and `"sampled"` above (`choose_loss_negatives`); the
            config keeps the chosen mode.
        num_sampled_negatives (`int`, *optional*, defaults to 1024):
            Uniform negatives per step when `loss_negatives="sampled"`.
        loss_chunk_size (`int`, *optional*, defaults to 2048):
            Positions per chunk of the full-catalog loss; bounds its memory to `chunk x num_items` scores.
        item_encoder_name_or_path (`str`, *optional*, defaults to `"openai/clip-vit-base-patch32"`):
            Hub id or local folder of the encoder that produced the content features.
        item_encoder_type (`str`, *optional*, defaults to `"clip"`):
            `"clip"` (text and image towers) or `"text"` (a sentence encoder with mean pooling).
        pad_item_id (`int`, *optional*, defaults to 0):
            Index of the padding item. Not called `pad_token_id`: the Trainer copies tokenizer ids into that name.
        item_features_file (`str`, *optional*, defaults to `"item_features.safetensors"`):
            The file of the catalog's content features, relative to the model folder: in the folder itself, or, for a
            Trainer checkpoint, in the run folder above it (`"../item_features.safetensors"`), so that checkpoints do
            not copy it. Set by `save_pretrained`; no other path is accepted, so a downloaded config cannot point
            elsewhere.
        item_features_sha256 (`str`, *optional*):
            SHA-256 of that file, checked when the model is loaded. Set by `save_pretrained`; `None` in configs saved
            before the features had a file of their own (the features are then read from the weights).
    """

    model_type = "genrec"

    num_items: int = 1
    num_id_items: int | None = None
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int | None = None
    max_seq_len: int = 50
    hidden_dropout_prob: float = 0.1
    attention_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02
    text_feature_dim: int = 512
    image_feature_dim: int = 512
    fusion: str = "gate"
    id_dropout: float = 0.1
    loss_negatives: str = "auto"
    num_sampled_negatives: int = 1024
    loss_chunk_size: int = 2048
    item_encoder_name_or_path: str | None = "openai/clip-vit-base-patch32"
    item_encoder_type: str = "clip"
    pad_item_id: int = 0
    item_features_file: str = "item_features.safetensors"
    item_features_sha256: str | None = None

    def __post_init__(self, **kwargs):
        if self.num_id_items is None:
            self.num_id_items = self.num_items
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size
        if self.loss_negatives == "auto":
            self.loss_negatives, _ = choose_loss_negatives(self.num_items)
        self._validate()
        super().__post_init__(**kwargs)

    def _validate(self) -> None:
        check = partial(check_field, self)

        check(self.num_items >= 1, "num_items", "the catalog needs at least one item")
        check(0 <= self.num_id_items <= self.num_items, "num_id_items", "must lie in [0, num_items]")
        for field in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "max_seq_len"):
            check(getattr(self, field) >= 1, field, "must be a positive integer")
        check(
            self.hidden_size % self.num_attention_heads == 0,
            "hidden_size",
            f"must be divisible by num_attention_heads={self.num_attention_heads}",
        )
        for field in ("hidden_dropout_prob", "attention_dropout_prob", "id_dropout"):
            check(0.0 <= getattr(self, field) < 1.0, field, "a probability in [0, 1) is required")
        check(self.text_feature_dim >= 0, "text_feature_dim", "must be >= 0")
        check(self.image_feature_dim >= 0, "image_feature_dim", "must be >= 0")
        check(self.fusion in FUSION_MODES, "fusion", f"expected one of {FUSION_MODES}")
        check(
            self.fusion == "id" or self.text_feature_dim + self.image_feature_dim > 0,
            "fusion",
            "content fusion needs text_feature_dim or image_feature_dim > 0",
        )
        check(self.fusion in ("id", "content") or self.num_id_items >= 1, "num_id_items", "ID fusion needs IDs")
        check(self.loss_negatives in NEGATIVE_SAMPLING_MODES, "loss_negatives", f"one of {LOSS_NEGATIVES_CHOICES}")
        check(self.num_sampled_negatives >= 1, "num_sampled_negatives", "must be a positive integer")
        check(self.loss_chunk_size >= 1, "loss_chunk_size", "must be a positive integer")
        check(self.item_encoder_type in ITEM_ENCODER_TYPES, "item_encoder_type", f"one of {ITEM_ENCODER_TYPES}")
        check(self.pad_item_id == 0, "pad_item_id", "padding must be item index 0")
        name = self.item_features_file.removeprefix("../")
        check(
            bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name,
            "item_features_file",
            "a file name in the model folder or its parent ('../<name>'), no other path",
        )
        check(
            self.item_features_sha256 is None or re.fullmatch("[0-9a-f]{64}", self.item_features_sha256) is not None,
            "item_features_sha256",
            "a SHA-256 in hexadecimal",
        )


__all__ = ["GenRecConfig", "check_field", "choose_loss_negatives"]

"""GenRecProcessor: the item "tokenizer" (item vocabulary, item text, item images) around a CLIP processor."""

import json
import logging
from collections.abc import Iterable, Mapping, Sequence

import torch
from transformers import BatchFeature
from transformers.processing_utils import ProcessorMixin

logger = logging.getLogger(__name__)

PAD_ITEM = "[PAD]"
DEFAULT_TEXT_FIELDS = ("title", "store", "categories", "features", "description", "details")
UNKNOWN_ITEM_POLICIES = ("error", "skip")


class UnknownItemError(KeyError):
    """A `parent_asin` that is not in the item vocabulary."""

    def __init__(self, parent_asin: str, where: str):
        super().__init__(f"unknown parent_asin {parent_asin!r} in {where}: it is not in the item catalog")
        self.parent_asin = parent_asin


class GenRecProcessor(ProcessorMixin):
    r"""
    Turns item histories into padded index tensors, and item records into encoder inputs.

    Args:
        image_processor (`ImageProcessingMixin`):
            The item encoder's image processor (CLIP). Unused when the encoder has no vision tower.
        tokenizer (`PreTrainedTokenizerBase`):
            The item encoder's tokenizer (CLIP, or a sentence encoder's).
        item_vocab (`list[str]`, *optional*):
            `parent_asin` of every catalog item in index order; index 0 is padding and is added automatically.
        text_fields (`list[str]`, *optional*):
            Item fields rendered into the item text, most important first (truncation drops the tail).
        max_seq_len (`int`, *optional*, defaults to 50):
            Histories keep their most recent `max_seq_len` items.
        text_max_length (`int`, *optional*):
            Token budget of an item text. Defaults to the tokenizer's limit, capped at 256.
    """

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        item_vocab: Sequence[str] | None = None,
        text_fields: Sequence[str] | None = None,
        max_seq_len: int = 50,
        text_max_length: int | None = None,
        **kwargs,
    ):
        vocab = list(item_vocab or [])
        self.item_vocab = vocab if vocab[:1] == [PAD_ITEM] else [PAD_ITEM, *vocab]
        self.text_fields = list(text_fields or DEFAULT_TEXT_FIELDS)
        self.max_seq_len = max_seq_len
        self.text_max_length = text_max_length or min(getattr(tokenizer, "model_max_length", 77), 256)
        self._index = self._build_index(self.item_vocab)
        super().__init__(image_processor, tokenizer, **kwargs)

    @classmethod
    def without_content(cls, item_vocab: Sequence[str], max_seq_len: int = 50) -> "GenRecProcessor":
        """A processor for ID-only models (no item encoder): a placeholder 3-token tokenizer and default image
        processor stand in for the encoder's, which such a model never uses."""
        from transformers import CLIPImageProcessorPil, CLIPTokenizer

        return cls(CLIPImageProcessorPil(), CLIPTokenizer(), item_vocab=item_vocab, max_seq_len=max_seq_len)

    @staticmethod
    def _build_index(item_vocab: list[str]) -> dict[str, int]:
        index = {asin: i for i, asin in enumerate(item_vocab)}
        if len(index) != len(item_vocab):
            duplicates = sorted({a for a in item_vocab if item_vocab.count(a) > 1})[:5]
            raise ValueError(f"item_vocab has duplicate parent_asin values, e.g. {duplicates}")
        return index

    # ------------------------------------------------------------------------------------------------------------
    # Item vocabulary
    # ------------------------------------------------------------------------------------------------------------
    @property
    def num_items(self) -> int:
        """Catalog size, without the padding index."""
        return len(self.item_vocab) - 1

    def __contains__(self, parent_asin: str) -> bool:
        return parent_asin in self._index and parent_asin != PAD_ITEM

    def item_to_index(self, parent_asin: str, where: str = "input") -> int:
        index = self._index.get(parent_asin, 0)
        if index == 0:
            raise UnknownItemError(parent_asin, where)
        return index

    def index_to_item(self, index: int) -> str:
        if not 1 <= index <= self.num_items:
            raise IndexError(f"item index {index} is outside the catalog 1..{self.num_items}")
        return self.item_vocab[index]

    def add_items(self, parent_asins: Iterable[str]) -> list[int]:
        """Appends new `parent_asin`s to the vocabulary; returns their indices."""
        new = list(parent_asins)
        clashes = [a for a in new if a in self._index]
        if clashes:
            raise ValueError(f"items already in the catalog: {clashes[:5]}")
        self._index = self._build_index(self.item_vocab + new)
        self.item_vocab.extend(new)
        return [self._index[a] for a in new]

    # ------------------------------------------------------------------------------------------------------------
    # Histories
    # ------------------------------------------------------------------------------------------------------------
    def __call__(
        self,
        histories: Sequence[Sequence[str]] | None = None,
        unknown_items: str = "error",
        return_tensors: str = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Right-padded `item_ids` and `attention_mask` for histories of `parent_asin`s (oldest first).

        A history longer than `max_seq_len` keeps its most recent items; repeated items are kept (they are real
        repeat purchases). An unknown `parent_asin` raises `UnknownItemError` (`unknown_items="error"`) or is
        left out of that history with a warning (`"skip"`); the number left out per history is returned as
        `num_unknown`.
        """
        if histories is None:
            raise ValueError("GenRecProcessor needs `histories`: a list of parent_asin lists")
        if unknown_items not in UNKNOWN_ITEM_POLICIES:
            raise ValueError(f"unknown_items must be one of {UNKNOWN_ITEM_POLICIES}, got {unknown_items!r}")
        rows, num_unknown = [], []
        for user, history in enumerate(histories):
            if isinstance(history, str):
                raise TypeError(f"history {user} is a string; pass a list of parent_asin values")
            indices = []
            for asin in history:
                index = self._index.get(asin, 0)
                if index == 0 and unknown_items == "error":
                    raise UnknownItemError(asin, f"history {user}")
                if index:
                    indices.append(index)
            if len(indices) < len(history):
                logger.warning("history %d: left out %d unknown items", user, len(history) - len(indices))
            rows.append(indices[-self.max_seq_len :])
            num_unknown.append(len(history) - len(indices))
        return BatchFeature(
            {**self.pad_histories(rows), "num_unknown": torch.tensor(num_unknown)}, tensor_type=return_tensors
        )

    @staticmethod
    def pad_histories(rows: Sequence[Sequence[int]], pad_to_multiple_of: int | None = None) -> dict[str, torch.Tensor]:
        """Right-pads index lists with 0 into `item_ids` and `attention_mask` (at least one column)."""
        width = max([len(r) for r in rows] + [1])
        if pad_to_multiple_of:
            width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
        item_ids = torch.zeros(len(rows), width, dtype=torch.long)
        for i, row in enumerate(rows):
            item_ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        return {"item_ids": item_ids, "attention_mask": (item_ids != 0).long()}

    # ------------------------------------------------------------------------------------------------------------
    # Item content
    # ------------------------------------------------------------------------------------------------------------
    def render_item_text(self, item: Mapping) -> str:
        """The item's text: its `text_fields` in order, as `Field: value` parts joined by `. `."""
        parts = []
        for field in self.text_fields:
            value = _flatten_field(item.get(field))
            if value:
                parts.append(value if field == "title" else f"{field.replace('_', ' ').capitalize()}: {value}")
        return ". ".join(parts)

    @staticmethod
    def load_image(path: str | None):
        """The RGB image at `path`, or `None` when there is no path or the file is missing or unreadable."""
        if not path:
            return None
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError) as error:
            logger.warning("image %s is unreadable (%s); the item is encoded without an image", path, error)
            return None

    def encode_items(self, items: Sequence[Mapping], with_images: bool = True) -> BatchFeature:
        """Encoder inputs for item records: tokenized texts for every item, `pixel_values` for the items whose
        image (`image_path`) loads, and `image_mask` saying which those are."""
        texts = [self.render_item_text(item) for item in items]
        inputs = dict(
            self.tokenizer(texts, padding=True, truncation=True, max_length=self.text_max_length, return_tensors="pt")
        )
        images = [self.load_image(item.get("image_path")) for item in items] if with_images else [None] * len(items)
        inputs["image_mask"] = torch.tensor([image is not None for image in images], dtype=torch.bool)
        loaded = [image for image in images if image is not None]
        if loaded:
            inputs["pixel_values"] = self.image_processor(loaded, return_tensors="pt")["pixel_values"]
        return BatchFeature(inputs)


def _flatten_field(value) -> str:
    """Text of a metadata field: lists joined, dicts (or their JSON dumps) as `key: value` pairs."""
    if value is None:
        return ""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError:
                return stripped
        else:
            return stripped
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {_flatten_field(v)}" for k, v in value.items() if _flatten_field(v))
    if isinstance(value, (list, tuple)):
        return ", ".join(text for text in (_flatten_field(v) for v in value) if text)
    return str(value)


__all__ = ["GenRecProcessor", "UnknownItemError"]

"""GenRecProcessor: the item "tokenizer" (item vocabulary, item text, item images) around a CLIP processor."""

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from transformers import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .item_content import DEFAULT_TEXT_FIELDS, load_image, render_item_text

logger = logging.getLogger(__name__)

PAD_ITEM = "[PAD]"
UNKNOWN_ITEM_POLICIES = ("error", "skip")


class UnknownItemError(KeyError):
    """A `parent_asin` that is not in the item vocabulary."""

    def __init__(self, parent_asin: str, where: str):
        super().__init__(f"unknown parent_asin {parent_asin!r} in {where}: it is not in the item catalog")
        self.parent_asin = parent_asin


@dataclass
class IndexedHistory:
    """One history as catalog indices: `item_ids` is the window the model reads (the most recent known items),
    `all_item_ids` every known item of the history, `unknown_items` the `parent_asin`s left out as unknown."""

    item_ids: list[int]
    all_item_ids: list[int]
    unknown_items: list[str] = field(default_factory=list)

    @property
    def truncated(self) -> int:
        """How many older known items the window leaves out."""
        return len(self.all_item_ids) - len(self.item_ids)


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

    def check_num_items(self, num_items: int, owner: str = "the model") -> None:
        """Raises `ValueError` unless `owner` (a model, a catalog) holds as many items as this vocabulary."""
        if num_items != self.num_items:
            raise ValueError(
                f"processor has {self.num_items} items but {owner} has {num_items}: they must describe the same catalog"
            )

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
        indexed = self.index_histories(histories, unknown_items)
        for user, history in enumerate(indexed):
            if history.unknown_items:
                logger.warning("history %d: left out %d unknown items", user, len(history.unknown_items))
        return BatchFeature(
            {
                **self.pad_histories([history.item_ids for history in indexed]),
                "num_unknown": torch.tensor([len(history.unknown_items) for history in indexed]),
            },
            tensor_type=return_tensors,
        )

    def index_histories(
        self,
        histories: Sequence[Sequence[str]],
        unknown_items: str = "error",
        max_len: int | None = None,
        names: Sequence[str] | None = None,
    ) -> list[IndexedHistory]:
        """Catalog indices of histories of `parent_asin`s (oldest first), one `IndexedHistory` each.

        `item_ids` keeps the most recent `max_len` (default `max_seq_len`) known items, repeats included. An unknown
        `parent_asin` raises `UnknownItemError` naming it and `names[i]` (default `history i`) under
        `unknown_items="error"`, or is left out and listed in `unknown_items` under `"skip"`.
        """
        if unknown_items not in UNKNOWN_ITEM_POLICIES:
            raise ValueError(f"unknown_items must be one of {UNKNOWN_ITEM_POLICIES}, got {unknown_items!r}")
        max_len = self.max_seq_len if max_len is None else max_len
        indexed = []
        for user, history in enumerate(histories):
            name = names[user] if names is not None else f"history {user}"
            if isinstance(history, str):
                raise TypeError(f"{name} is a string; pass a list of parent_asin values")
            known, unknown = [], []
            for asin in history:
                index = self._index.get(asin, 0)
                if index:
                    known.append(index)
                elif unknown_items == "error":
                    raise UnknownItemError(asin, name)
                else:
                    unknown.append(asin)
            indexed.append(IndexedHistory(known[-max_len:], known, unknown))
        return indexed

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
        return render_item_text(item, self.text_fields)

    def encode_items(self, items: Sequence[Mapping], with_images: bool = True) -> BatchFeature:
        """Encoder inputs for item records: tokenized texts for every item, `pixel_values` for the items whose
        image (`image_path`) loads, and `image_mask` saying which those are."""
        texts = [render_item_text(item, self.text_fields) for item in items]
        inputs = dict(
            self.tokenizer(texts, padding=True, truncation=True, max_length=self.text_max_length, return_tensors="pt")
        )
        images = [load_image(item.get("image_path")) for item in items] if with_images else [None] * len(items)
        inputs["image_mask"] = torch.tensor([image is not None for image in images], dtype=torch.bool)
        loaded = [image for image in images if image is not None]
        if loaded:
            inputs["pixel_values"] = self.image_processor(loaded, return_tensors="pt")["pixel_values"]
        return BatchFeature(inputs)


__all__ = ["GenRecProcessor", "IndexedHistory", "UnknownItemError"]

"""`SequenceCollator`: pads training sequences into per-position next-item labels, and eval examples into targets."""

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..evaluation.evaluator import collate_examples
from ..processing_genrec import GenRecProcessor

IGNORE_INDEX = -100


@dataclass
class SequenceCollator:
    """Right-pads examples into `item_ids`, `attention_mask` and `labels`.

    Training rows (`item_ids` only) become inputs `item_ids[:-1]` with per-position labels `item_ids[1:]` (padding
    labelled -100). Evaluation rows (`item_ids` + `target_id`) keep their history as input and label the target.
    """

    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        if "target_id" in features[0]:
            histories, targets = [f["item_ids"] for f in features], [f["target_id"] for f in features]
            return collate_examples(histories, targets, pad_to_multiple_of=self.pad_to_multiple_of)
        inputs = [f["item_ids"][:-1] for f in features]
        batch = GenRecProcessor.pad_histories(inputs, pad_to_multiple_of=self.pad_to_multiple_of)
        labels = torch.full_like(batch["item_ids"], IGNORE_INDEX)
        for i, f in enumerate(features):
            labels[i, : len(f["item_ids"]) - 1] = torch.as_tensor(f["item_ids"][1:], dtype=torch.long)
        return {**batch, "labels": labels}


__all__ = ["IGNORE_INDEX", "SequenceCollator"]

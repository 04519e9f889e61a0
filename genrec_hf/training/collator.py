"""Collators: training sequences into per-position next-item labels (dense head: catalog indices; generative head:
semantic-ID tokens), and eval examples into targets."""

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..configuration_genrec_generative import BOS_TOKEN_ID, PAD_TOKEN_ID
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


@dataclass
class SemanticIDCollator:
    """Right-pads training sequences as semantic-ID tokens for the generative head's causal LM loss.

    A training row's `item_ids` (catalog indices, oldest first) becomes `input_ids = [BOS] + tokens of every item`,
    labelled with itself (the model shifts labels; padding is -100), so every item of the sequence is predicted from
    its past. Evaluation rows (`item_ids` + `target_id`) are collated as for the dense head: the model turns them
    into prompts itself.

    Args:
        item_tokens (`torch.LongTensor` of shape `(num_items + 1, tokens_per_item)`):
            Token ids of every catalog row (`model.item_tokens(torch.arange(num_items + 1))`), on the CPU.
    """

    item_tokens: torch.LongTensor

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        if "target_id" in features[0]:
            histories, targets = [f["item_ids"] for f in features], [f["target_id"] for f in features]
            return collate_examples(histories, targets)
        sequences = [
            torch.cat([torch.tensor([BOS_TOKEN_ID]), self.item_tokens[torch.as_tensor(f["item_ids"])].flatten()])
            for f in features
        ]
        input_ids = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=PAD_TOKEN_ID)
        attention_mask = torch.arange(input_ids.shape[1])[None] < torch.tensor([len(s) for s in sequences])[:, None]
        labels = input_ids.masked_fill(~attention_mask, IGNORE_INDEX)
        return {"input_ids": input_ids, "attention_mask": attention_mask.long(), "labels": labels}


__all__ = ["IGNORE_INDEX", "SemanticIDCollator", "SequenceCollator"]

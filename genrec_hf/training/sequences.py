"""Training and evaluation examples from prepared splits, and the collator that pads them."""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from datasets import Dataset

from ..processing_genrec import GenRecProcessor

IGNORE_INDEX = -100


def train_sequences(split: Dataset, processor: GenRecProcessor) -> Dataset:
    """One row per user holding the user's whole training sequence as catalog indices (`item_ids`, `length`).

    A split row is (history, target); a user's longest row plus its target is that user's full sequence, so
    training predicts the next item at every position of it (causal), not only the last one. Sequences keep their
    most recent `max_seq_len + 1` items.
    """
    longest: dict[str, list[str]] = {}
    for user, history, target in zip(split["user_id"], split["history"], split["target"]):
        if len(history) + 1 > len(longest.get(user, ())):
            longest[user] = [*history, target]
    window = processor.max_seq_len + 1
    users, rows = [], []
    for user, sequence in longest.items():
        if len(sequence[-window:]) >= 2:
            users.append(user)
            rows.append([processor.item_to_index(a, f"train sequence of user {user!r}") for a in sequence[-window:]])
    return Dataset.from_dict({"user_id": users, "item_ids": rows, "length": [len(r) - 1 for r in rows]})


def eval_examples(split: Dataset, processor: GenRecProcessor) -> Dataset:
    """One row per split row: the history's catalog indices (most recent `max_seq_len`) and the target index."""

    def to_indices(batch: dict) -> dict:
        names = [f"history of user {u!r}" for u in batch["user_id"]]
        histories = [history.item_ids for history in processor.index_histories(batch["history"], names=names)]
        targets = [
            processor.item_to_index(t, f"target of user {u!r}") for u, t in zip(batch["user_id"], batch["target"])
        ]
        return {"item_ids": histories, "target_id": targets, "length": [len(h) for h in histories]}

    return split.map(to_indices, batched=True, remove_columns=split.column_names, desc="Indexing examples")


def item_counts(sequences: Dataset, num_items: int) -> torch.Tensor:
    """Interactions per catalog item (no padding row) in training sequences."""
    counts = torch.zeros(num_items + 1)
    for row in sequences["item_ids"]:
        counts.index_add_(0, torch.as_tensor(row), torch.ones(len(row)))
    return counts[1:]


@dataclass
class SequenceCollator:
    """Right-pads examples into `item_ids`, `attention_mask` and `labels`.

    Training rows (`item_ids` only) become inputs `item_ids[:-1]` with per-position labels `item_ids[1:]` (padding
    labelled -100). Evaluation rows (`item_ids` + `target_id`) keep their history as input and label the target.
    """

    pad_to_multiple_of: int | None = None

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        is_eval = "target_id" in features[0]
        inputs = [f["item_ids"] if is_eval else f["item_ids"][:-1] for f in features]
        batch = GenRecProcessor.pad_histories(inputs, pad_to_multiple_of=self.pad_to_multiple_of)
        item_ids = batch["item_ids"]
        if is_eval:
            labels = torch.tensor([f["target_id"] for f in features], dtype=torch.long)
        else:
            labels = torch.full_like(item_ids, IGNORE_INDEX)
            for i, f in enumerate(features):
                labels[i, : len(f["item_ids"]) - 1] = torch.as_tensor(f["item_ids"][1:], dtype=torch.long)
        return {**batch, "labels": labels}

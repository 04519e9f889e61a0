"""Training sequences and eval examples from prepared splits: histories become catalog indices through the processor.

A prepared split holds rows of `user_id`, `history` (`parent_asin`s, oldest first) and `target`. Eval examples keep
one row per split row (`item_ids`, `target_id`, `length`); training sequences keep one row per user, the user's
whole sequence (`item_ids`, `length`), so that training predicts the next item at every position of it.
"""

import torch
from datasets import Dataset

from .processing_genrec import GenRecProcessor


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


def train_sequences(split: Dataset, processor: GenRecProcessor) -> Dataset:
    """One row per user holding the user's whole training sequence as catalog indices (`item_ids`, `length`).

    A split row is (history, target); a user's longest row plus its target is that user's full sequence. Sequences
    keep their most recent `max_seq_len + 1` items (inputs and labels are that sequence shifted by one); users
    whose longest history is empty have no training position and are left out.
    """
    longest: dict[str, tuple[int, int]] = {}  # user -> (history length, row)
    for row, (user, history) in enumerate(zip(split["user_id"], split["history"])):
        if len(history) > longest.get(user, (0, -1))[0]:
            longest[user] = (len(history), row)
    examples = eval_examples(split.select([row for _, row in longest.values()]), processor)
    return Dataset.from_dict(
        {
            "user_id": list(longest),
            "item_ids": [[*history, target] for history, target in zip(examples["item_ids"], examples["target_id"])],
            "length": examples["length"],
        }
    )


def item_counts(sequences: Dataset, num_items: int) -> torch.Tensor:
    """Interactions per catalog item (no padding row) in training sequences."""
    counts = torch.zeros(num_items + 1)
    for row in sequences["item_ids"]:
        counts.index_add_(0, torch.as_tensor(row), torch.ones(len(row)))
    return counts[1:]


__all__ = ["eval_examples", "item_counts", "train_sequences"]

"""Interactions as compact arrays: deduplication, iterative k-core, chronological sequences and split rows."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .readers import Interaction

TIMESTAMP_CUTS = (1628643414042, 1658002729837)  # official Amazon Reviews 2023 cut points (ms)
SPLIT_PROTOCOLS = ("leave_one_out", "timestamp")
SPLIT_NAMES = ("train", "valid", "test")
SPLIT_COLUMNS = ("user_id", "history", "target", "timestamp", "rating")


@dataclass
class Interactions:
    """Interactions in file order as integer codes into `users` / `items`; `item_sources` holds each item's
    first `(file, line)`. Only these four columns are ever kept, so memory follows the number of interactions."""

    users: list[str]
    items: list[str]
    item_sources: list[tuple[str, int]]
    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray

    @classmethod
    def from_stream(cls, interactions: Iterable[Interaction]) -> Interactions:
        user_codes: dict[str, int] = {}
        item_codes: dict[str, int] = {}
        sources = []
        user, item, rating, timestamp = array("q"), array("q"), array("d"), array("q")
        for x in interactions:
            code = item_codes.get(x.parent_asin)
            if code is None:
                code = item_codes[x.parent_asin] = len(item_codes)
                sources.append((x.path, x.line))
            user.append(user_codes.setdefault(x.user_id, len(user_codes)))
            item.append(code)
            rating.append(x.rating)
            timestamp.append(x.timestamp)
        arrays = (np.array(a, dtype=a.typecode) for a in (user, item, rating, timestamp))
        return cls(list(user_codes), list(item_codes), sources, *arrays)

    def __len__(self) -> int:
        return len(self.user)

    def select(self, mask: np.ndarray) -> Interactions:
        """The interactions where `mask` is true, order kept (the vocabularies are shared, not shrunk)."""
        return Interactions(
            self.users, self.items, self.item_sources,
            self.user[mask], self.item[mask], self.rating[mask], self.timestamp[mask],
        )  # fmt: skip

    def kept_items(self) -> np.ndarray:
        return np.unique(self.item)

    def num_users(self) -> int:
        return len(np.unique(self.user))


def deduplicate(x: Interactions) -> Interactions:
    """Keeps the earliest interaction of each (user, item) pair; equal timestamps keep the first in file order."""
    order = np.lexsort((x.timestamp, x.item, x.user))  # lexsort is stable: ties stay in file order
    user, item = x.user[order], x.item[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (user[1:] != user[:-1]) | (item[1:] != item[:-1])
    mask = np.zeros(len(x), dtype=bool)
    mask[order[first]] = True
    return x.select(mask)


def k_core(x: Interactions, k: int) -> Interactions:
    """Iterative k-core: drops users and items with fewer than `k` interactions until none is left (k <= 1: no-op)."""
    while k > 1 and len(x):
        user_counts = np.bincount(x.user, minlength=len(x.users))
        item_counts = np.bincount(x.item, minlength=len(x.items))
        mask = (user_counts[x.user] >= k) & (item_counts[x.item] >= k)
        if mask.all():
            break
        x = x.select(mask)
    return x


def user_sequences(x: Interactions) -> Iterable[tuple[str, list[str], np.ndarray, np.ndarray]]:
    """`(user_id, items, timestamps, ratings)` per user, chronological; ties keep file order."""
    order = np.lexsort((x.timestamp, x.user))  # stable: equal timestamps stay in file order
    user = x.user[order]
    bounds = np.flatnonzero(user[1:] != user[:-1]) + 1
    for group in np.split(order, bounds) if len(order) else []:
        yield x.users[x.user[group[0]]], [x.items[i] for i in x.item[group]], x.timestamp[group], x.rating[group]


def split_of(position: int, length: int, timestamp: int, protocol: str) -> str:
    """Which split the `position`-th interaction of a user's `length` interactions goes to."""
    if protocol == "leave_one_out":
        return "test" if position == length - 1 else "valid" if position == length - 2 else "train"
    return "train" if timestamp < TIMESTAMP_CUTS[0] else "valid" if timestamp < TIMESTAMP_CUTS[1] else "test"


def split_columns(x: Interactions, protocol: str) -> dict[str, dict[str, list]]:
    """Columns of the train / valid / test rows: every interaction becomes one row whose history is all the
    user's earlier items (earliest first), assigned to a split by `protocol`."""
    if protocol not in SPLIT_PROTOCOLS:
        raise ValueError(f"split must be one of {SPLIT_PROTOCOLS}, got {protocol!r}")
    splits = {name: {column: [] for column in SPLIT_COLUMNS} for name in SPLIT_NAMES}
    for user_id, items, timestamps, ratings in user_sequences(x):
        for position, (target, timestamp, rating) in enumerate(zip(items, timestamps.tolist(), ratings.tolist())):
            columns = splits[split_of(position, len(items), timestamp, protocol)]
            columns["user_id"].append(user_id)
            columns["history"].append(items[:position])
            columns["target"].append(target)
            columns["timestamp"].append(timestamp)
            columns["rating"].append(rating)
    return splits


def sequence_stats(x: Interactions) -> dict:
    """Users, items, interactions, average / median sequence length and density."""
    lengths = np.bincount(x.user)[np.unique(x.user)] if len(x) else np.zeros(1)
    users, items = x.num_users(), len(x.kept_items())
    return {
        "users": users,
        "items": items,
        "interactions": len(x),
        "avg_seq_len": round(float(lengths.mean()), 4),
        "median_seq_len": float(np.median(lengths)),
        "density": round(len(x) / (users * items), 6) if users and items else 0.0,
    }

"""Readers of the published benchmark files into `PreparedData`, saved in the standard layout.

* `load_beauty_ids`: the Amazon 2014 Beauty file behind the SASRec / TIGER / eSASRec tables (`Beauty.txt`, one line
  per user `user item1 item2 ...`, chronological, ids only), split leave-one-out exactly as those papers do: the
  last item is the test target, the second to last the valid target, the rest is training. Item texts come from
  `Beauty_items.jsonl.gz` (`item_id, asin, title, brand, categories, ...`, keyed by the ids of `Beauty.txt`).
* `load_unisrec`: a dataset as processed for the UniSRec paper (RecBole atomic files `<name>.{train,valid,test}.inter`,
  `<name>.item2index`, `<name>.user2index`, `<name>.text`); the given splits are kept as they are (no re-split) and
  each item's text becomes its `title`.

Neither format carries timestamps or ratings: a row's `timestamp` is the target's position in the user's sequence
(so chronological order is kept) and its `rating` is NaN.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict

from .items import build_item_table, item_row
from .prepare import SPLIT_FEATURES, PreparedData, _save, load_prepared
from .processing import SPLIT_COLUMNS, SPLIT_NAMES, Interactions, sequence_stats, split_columns
from .validation import ValidationReport

NO_RATING = float("nan")


def save_prepared(data: PreparedData, output_dir: str | os.PathLike) -> PreparedData:
    """Saves `data` as `prepare_dataset` does (`splits/`, `items/`, then `stats.json`) and loads it back."""
    _save(data, Path(output_dir))
    return load_prepared(output_dir)


def _interactions(sequences: dict[str, list[str]], source: str) -> Interactions:
    """Chronological per-user sequences as `Interactions` (timestamp = position, rating = NaN)."""
    users = list(sequences)
    item_codes: dict[str, int] = {}
    sources = []
    user, item, timestamp = [], [], []
    for code, sequence in enumerate(sequences.values()):
        for position, asin in enumerate(sequence):
            if asin not in item_codes:
                item_codes[asin] = len(item_codes)
                sources.append((source, code + 1))
            user.append(code)
            item.append(item_codes[asin])
            timestamp.append(position)
    return Interactions(
        users, list(item_codes), sources, np.asarray(user, dtype=np.int64), np.asarray(item, dtype=np.int64),
        np.full(len(user), NO_RATING), np.asarray(timestamp, dtype=np.int64),
    )  # fmt: skip


def _prepared(
    name: str, x: Interactions, columns: dict[str, dict[str, list]], records: dict[str, dict], source: dict
) -> PreparedData:
    """`PreparedData` of split columns, the item table (items in `records` have metadata) and statistics."""
    items = build_item_table(item_row(asin, name, records.get(asin), {}, None) for asin in x.items)
    splits = DatasetDict({split: Dataset.from_dict(columns[split], features=SPLIT_FEATURES) for split in SPLIT_NAMES})
    report = ValidationReport()
    stats = {
        "name": name,
        "synthetic": False,
        "split": "leave_one_out",
        "kcore": 5,
        **sequence_stats(x),
        "items": len(items),
        "rows": {split: len(splits[split]) for split in SPLIT_NAMES},
        "items_with_metadata": sum(items["has_metadata"]),
        "items_with_image": 0,
        "dropped": {},
        "files_unreadable": [],
        "validation": report.to_dict(),
        "source": source,
    }
    return PreparedData(splits, items, stats, report)


def _finish(data: PreparedData, output_dir: str | os.PathLike | None) -> PreparedData:
    return data if output_dir is None else save_prepared(data, output_dir)


def load_beauty_ids(
    path: str | os.PathLike, items: str | os.PathLike | None = None, output_dir: str | os.PathLike | None = None
) -> PreparedData:
    """`Beauty.txt` (`user item1 item2 ...` per line, chronological) -> leave-one-out `PreparedData`.

    Test = each user's last item, valid = the second to last, train = the rest (SASRec / TIGER protocol). Without
    `items`, items have no text (`title` empty, `has_metadata` False); with the `Beauty_items.jsonl.gz` file, each
    item gets its title, brand (as `store`) and category path. Saved to `output_dir` when given.
    """
    path = Path(path)
    sequences: dict[str, list[str]] = {}
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4:
                raise ValueError(f"{path}:{number}: a user needs at least 3 items for leave-one-out, got {fields[1:]}")
            if fields[0] in sequences:
                raise ValueError(f"{path}:{number}: user {fields[0]} appears twice")
            sequences[fields[0]] = fields[1:]
    x = _interactions(sequences, str(path))
    source = {"format": "user item1 item2 ... (chronological)", "file": str(path.resolve())}
    records = {}
    if items is not None:
        records = read_beauty_items(items)
        missing = sorted(set(x.items) - set(records), key=int)
        if missing:
            raise ValueError(f"{items}: {len(missing)} items of {path.name} have no record, e.g. {missing[:3]}")
        source["items_file"] = str(Path(items).resolve())
    return _finish(_prepared("Beauty2014", x, split_columns(x, "leave_one_out"), records, source), output_dir)


def read_beauty_items(path: str | os.PathLike) -> dict[str, dict]:
    """`Beauty_items.jsonl(.gz)` -> `{item_id: {"title", "store", "categories"}}` (the brand becomes `store`).

    Every line must be a JSON object with an integer `item_id` seen once; anything else raises `ValueError` naming
    `file:line` (the file is a fixed published artefact: a bad line means a damaged copy, not data to skip).
    """
    path = Path(path)
    records: dict[str, dict] = {}
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                item_id = row["item_id"]
            except (json.JSONDecodeError, TypeError, KeyError) as error:
                raise ValueError(f"{path}:{number}: not an item record with an item_id ({error})") from None
            if not isinstance(item_id, int) or str(item_id) in records:
                raise ValueError(f"{path}:{number}: item_id {item_id!r} is not a new integer id")
            brand = row.get("brand")
            records[str(item_id)] = {
                "title": row.get("title") or None,
                "store": brand if brand and brand != "Unknown" else None,
                "categories": list(row.get("categories") or []),
            }
    return records


def _read_atomic(path: Path) -> Iterable[list[str]]:
    """Rows of a RecBole atomic file (tab-separated, a `name:type` header line skipped)."""
    with path.open(encoding="utf-8") as lines:
        next(lines)
        for line in lines:
            line = line.rstrip("\n")
            if line:
                yield line.split("\t")


def _index(path: Path) -> dict[str, str]:
    """`index -> original id` from a `<name>.item2index` / `<name>.user2index` file (`id \\t index`, no header)."""
    with path.open(encoding="utf-8") as lines:
        return {
            index: original for original, index in (line.rstrip("\n").split("\t") for line in lines if line.strip())
        }


def load_unisrec(
    directory: str | os.PathLike, name: str = "Scientific", output_dir: str | os.PathLike | None = None
) -> PreparedData:
    """UniSRec / RecBole atomic files -> `PreparedData` with the given train / valid / test rows (not re-split).

    Every `.inter` row `(user, item_id_list, item_id)` becomes a split row `(history, target)` with user and item
    indices mapped back to their original ids; histories are as given (RecBole truncates them to 50 items). The
    text of `<name>.text` becomes each item's `title`. The statistics count each user's full sequence, rebuilt as
    the first history item followed by every target, ordered by split, then history length, then reverse file
    order (the files list a user's train rows latest first, and histories truncated to 50 items tie on length); the
    result must agree with the test history. Saved to `output_dir` when given.
    """
    directory = Path(directory)
    users, items = _index(directory / f"{name}.user2index"), _index(directory / f"{name}.item2index")
    texts = {asin: text.strip() for asin, text in _read_atomic(directory / f"{name}.text")}
    columns = {split: {column: [] for column in SPLIT_COLUMNS} for split in SPLIT_NAMES}
    firsts: dict[str, tuple[int, str]] = {}  # user -> (length, first item) of the shortest history
    targets: dict[str, list[tuple[int, int, int, str]]] = {}
    for order, split in enumerate(SPLIT_NAMES):
        path = directory / f"{name}.{split}.inter"
        for number, (user_index, history, target) in enumerate(_read_atomic(path), 2):
            try:
                user = users[user_index]
                history = [items[i] for i in history.split()]
                target = items[target]
            except KeyError as error:
                message = f"{path}:{number}: index {error} is not in the user2index / item2index files"
                raise ValueError(message) from None
            if history and (user not in firsts or len(history) < firsts[user][0]):
                firsts[user] = (len(history), history[0])
            targets.setdefault(user, []).append((order, len(history), -number, target))
            for column, value in zip(SPLIT_COLUMNS, (user, history, target, len(history), NO_RATING)):
                columns[split][column].append(value)
    sequences = {}
    for user, history in zip(columns["test"]["user_id"], columns["test"]["history"]):
        sequence = [firsts[user][1], *(row[-1] for row in sorted(targets[user]))]
        if sequence[-len(history) - 1 : -1] != history:
            raise ValueError(f"user {user}: train/valid targets do not rebuild the test history")
        sequences[user] = sequence
    x = _interactions(sequences, str(directory / f"{name}.test.inter"))
    missing = sorted(set(x.items) - set(texts))
    if missing:
        raise ValueError(f"{len(missing)} items have no text in {name}.text, e.g. {missing[:3]}")
    records = {asin: {"title": texts[asin]} for asin in x.items}
    source = {
        "format": "RecBole atomic files (UniSRec processing)",
        "directory": str(directory.resolve()),
        "name": name,
    }
    return _finish(_prepared(name, x, columns, records, source), output_dir)


__all__ = ["load_beauty_ids", "load_unisrec", "read_beauty_items", "save_prepared"]

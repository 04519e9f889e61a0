"""`prepare_dataset`: raw Amazon Reviews 2023 files -> leak-free sequence splits, item table and statistics,
saved with `save_to_disk` and cached by a fingerprint of the inputs and options."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, Features, List, Value, load_from_disk

from .._atomic import atomic_write_text
from .hub_files import hub_path_repo, is_hub_path
from .items import build_item_table, item_row, local_images
from .processing import (
    SPLIT_COLUMNS,
    SPLIT_NAMES,
    SPLIT_PROTOCOLS,
    Interactions,
    deduplicate,
    k_core,
    sequence_stats,
    split_columns,
)
from .readers import category_of, expand_paths, iter_interactions, iter_meta, iter_split_rows, split_file_protocol
from .synthetic import SYNTHETIC_CATEGORY
from .validation import ValidationReport

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the output of the same inputs changes
OWNER_MARKER = ".genrec_prepared"  # marks a folder whose splits/ and items/ prepare wrote (and may replace)
SPLIT_FEATURES = Features(
    {
        "user_id": Value("string"),
        "history": List(Value("string")),
        "target": Value("string"),
        "timestamp": Value("int64"),
        "rating": Value("float64"),
    }
)
PathsLike = str | os.PathLike | Sequence[str | os.PathLike] | None


@dataclass
class PreparedData:
    """Train / valid / test rows (`user_id, history, target, timestamp, rating`), the item table, the statistics
    and the validation report."""

    splits: DatasetDict
    items: Dataset
    stats: dict
    report: ValidationReport


def load_prepared(output_dir: str | os.PathLike) -> PreparedData:
    """Loads what `prepare_dataset(..., output_dir=...)` saved (memory-mapped Arrow tables)."""
    output_dir = Path(output_dir)
    stats = _read_stats(output_dir)
    if stats is None:
        raise ValueError(
            f"{output_dir} is not a complete prepared-data folder (no readable stats.json, which is written last: "
            "was prepare_data interrupted?); run prepare_data.py for it again"
        )
    return PreparedData(
        splits=load_from_disk(str(output_dir / "splits")),
        items=load_from_disk(str(output_dir / "items")),
        stats=stats,
        report=ValidationReport.from_dict(stats["validation"]),
    )


def _fingerprint(files: Sequence[str], image_dirs: Sequence[str | os.PathLike | None], options: dict) -> str:
    """A hash of the input files (path, size, mtime), the image folders' listings and the options."""
    state = {
        "version": FORMAT_VERSION,
        "files": [(str(Path(p).resolve()), os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in files],
        "images": [sorted(os.listdir(d)) if d and Path(d).is_dir() else None for d in image_dirs],
        "options": options,
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:32]


def _read_stats(output_dir: Path) -> dict | None:
    """The saved statistics, or `None` when there are none (or a damaged file)."""
    try:
        stats = json.loads((output_dir / "stats.json").read_text())
    except (OSError, ValueError):
        return None
    return stats if isinstance(stats, dict) else None


def _as_list(paths: PathsLike) -> list:
    return [] if paths is None else [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)


def _is_cached(output_dir: Path, fingerprint: str) -> bool:
    if not ((output_dir / "splits").is_dir() and (output_dir / "items").is_dir()):
        return False
    return (_read_stats(output_dir) or {}).get("fingerprint") == fingerprint


def check_output_dir(output_dir: Path) -> None:
    """Raises `ValueError` when `output_dir` holds `splits/` or `items/` that prepare did not write (no marker file
    of its own, no stats.json of a prepared folder): saving would delete a user's folders."""
    ours = (output_dir / OWNER_MARKER).exists() or "fingerprint" in (_read_stats(output_dir) or {})
    foreign = [f"{name}/" for name in ("splits", "items") if (output_dir / name).exists()]
    if foreign and not ours:
        raise ValueError(
            f"{output_dir} already holds {' and '.join(foreign)} that prepare_data did not write; saving would replace "
            "them: choose an empty or new output_dir"
        )


def _read_raw(paths: Sequence[str], kcore: int, split: str, report: ValidationReport):
    """Reviews -> deduplicated k-core interactions and split columns; returns `(interactions, columns, dropped)`."""
    x = Interactions.from_stream(iter_interactions(paths, report))
    read = len(x)
    x = deduplicate(x)
    deduplicated = len(x)
    x = k_core(x, kcore)
    dropped = {"duplicate": read - deduplicated, f"{kcore}-core": deduplicated - len(x)}
    return x, split_columns(x, split), dropped


def _read_ready_splits(paths: Sequence[str], split: str, report: ValidationReport):
    """Official `*_w_his.{train,valid,test}.csv` files taken as they are (no dedup, no k-core)."""
    columns = {name: {column: [] for column in SPLIT_COLUMNS} for name in SPLIT_NAMES}
    history_sources: dict[str, tuple[str, int]] = {}
    interactions = []
    for path in paths:
        protocol, name = split_file_protocol(path)
        if protocol != split:
            raise ValueError(f"{path} holds a {protocol} split, but split={split!r} was asked for")
        for interaction, history in iter_split_rows(path, report):
            interactions.append(interaction)
            for asin in history:
                history_sources.setdefault(asin, (path, interaction.line))
            for column, value in zip(SPLIT_COLUMNS, (interaction.user_id, history, interaction.parent_asin,
                                                     interaction.timestamp, interaction.rating)):  # fmt: skip
                columns[name][column].append(value)
    x = Interactions.from_stream(interactions)
    return x, columns, history_sources


def _check_not_empty(x: Interactions, paths: Sequence[str], report: ValidationReport, dropped: dict, kcore: int):
    """Raises `ValueError` saying which step removed everything when no interaction is left to prepare."""
    if len(x):
        return
    kept = sum(report.file(path).valid for path in paths)
    if not kept:
        raise ValueError(f"no valid review in {', '.join(paths)}: nothing to prepare\n{report.format()}")
    removed = ", ".join(f"{reason} {count:,}" for reason, count in dropped.items() if count)
    raise ValueError(
        f"no interaction left to prepare: {kept:,} valid reviews were read, then removed ({removed}); "
        f"a {kcore}-core keeps only users and items with at least {kcore} interactions: lower kcore"
    )


def _catalog(x: Interactions, extra_sources: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    """`parent_asin -> first (file, line)` of every item that survives processing."""
    catalog = {x.items[code]: x.item_sources[code] for code in x.kept_items().tolist()}
    return {**extra_sources, **catalog}


def _read_metadata(
    catalog: dict[str, tuple[str, int]], meta_paths: Sequence[str], report: ValidationReport, dropped: dict
) -> dict[str, tuple[str, dict]]:
    """`parent_asin -> (category, record)` for catalog items, streaming the metadata once (first record wins)."""
    records: dict[str, tuple[str, dict]] = {}
    duplicates = 0
    for category, record in iter_meta(meta_paths, report):
        asin = record["parent_asin"]
        if asin in catalog:
            duplicates += asin in records
            records.setdefault(asin, (category, record))
    if duplicates:
        dropped["duplicate_metadata"] = duplicates
    return records


def _report_missing_metadata(
    catalog: dict[str, tuple[str, int]], records: dict, x: Interactions, report: ValidationReport
) -> None:
    """Reports catalog items without metadata (strict mode raises, naming where the item first appears)."""
    missing = sorted(asin for asin in catalog if asin not in records)
    if missing and report.strict:
        path, line = catalog[missing[0]]
        raise ValueError(f"{path}:{line}: item {missing[0]} (parent_asin) has no metadata")
    missing_set = set(missing)
    missing_codes = [code for code, asin in enumerate(x.items) if asin in missing_set]
    report.items_without_metadata = missing
    report.interactions_without_metadata = int(np.isin(x.item, missing_codes).sum())


def _save(data: PreparedData, output_dir: Path) -> None:
    """Writes `splits/`, `items/` and, last, `stats.json` (so an interrupted save never looks complete), into a folder
    marked as prepare's own; a folder with someone else's `splits/` or `items/` is refused (`check_output_dir`)."""
    check_output_dir(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output_dir / OWNER_MARKER, "splits/, items/ and stats.json are written by genrec_hf prepare\n")
    (output_dir / "stats.json").unlink(missing_ok=True)
    # An empty dataset needs num_shards=1: by default `datasets` writes no shard for it and then cannot load it
    # back (huggingface/datasets#8385); this happens when the k-core leaves nothing or a split has no rows.
    for name, dataset, num_shards in (
        ("splits", data.splits, {split: 1 for split, rows in data.splits.items() if not len(rows)}),
        ("items", data.items, 1 if not len(data.items) else None),
    ):
        shutil.rmtree(output_dir / name, ignore_errors=True)
        dataset.save_to_disk(str(output_dir / name), num_shards=num_shards)
    atomic_write_text(output_dir / "stats.json", json.dumps(data.stats, indent=2))


def format_stats(stats: dict) -> str:
    """A short human-readable summary of the statistics."""
    rows = ", ".join(f"{name} {count:,}" for name, count in stats["rows"].items())
    dropped = ", ".join(f"{reason} {count:,}" for reason, count in stats["dropped"].items()) or "none"
    return "\n".join([
        f"{stats['name']}{' (SYNTHETIC sample, not real Amazon data)' if stats['synthetic'] else ''}: "
        f"{stats['split']} split, {stats['kcore']}-core",
        f"users {stats['users']:,}, items {stats['items']:,}, interactions {stats['interactions']:,}, "
        f"density {stats['density']}",
        f"sequence length: average {stats['avg_seq_len']}, median {stats['median_seq_len']}",
        f"rows: {rows}",
        f"items with metadata {stats['items_with_metadata']:,}, with an image {stats['items_with_image']:,}",
        f"dropped: {dropped}",
    ])  # fmt: skip


def prepare_dataset(
    reviews: PathsLike,
    meta: PathsLike,
    output_dir: str | os.PathLike | None = None,
    images_dir: str | os.PathLike | None = None,
    kcore: int = 5,
    split: str = "leave_one_out",
    strict: bool = False,
    image_cache_dir: str | os.PathLike | None = None,
) -> PreparedData:
    """Raw review and metadata files -> `PreparedData`.

    Args:
        reviews: review files or globs, plain or gzipped, local or `hf://`: raw `<Category>.jsonl`, interaction
            CSVs (`user_id,parent_asin,rating,timestamp`, e.g. `rating_only`), or the official splits with history
            (`last_out_w_his/<Category>.train.csv` as on the Hub, or `<Category>.last_out_w_his.train.csv`), taken
            as they are.
        meta: metadata files or globs `meta_<Category>.jsonl(.gz)`, local or `hf://`; several categories are merged.
        output_dir: where to save `splits/`, `items/` and `stats.json`; a second call with the same inputs and
            options returns the saved result without redoing any work.
        images_dir: local photos `<parent_asin>.(jpg|jpeg|png|webp)`.
        kcore: iterative k-core on users and items (0 or 1 disables it).
        split: `"leave_one_out"` (last item test, second-to-last valid) or `"timestamp"` (official cut points).
        strict: raise `ValueError` naming `file:line` and the field on the first invalid record.
        image_cache_dir: a cache filled by `fetch_images`, used for items without a local photo.
    """
    if split not in SPLIT_PROTOCOLS:
        raise ValueError(f"split must be one of {SPLIT_PROTOCOLS}, got {split!r}")
    hub_datasets = sorted({hub_path_repo(str(p)) for p in _as_list(reviews) + _as_list(meta) if is_hub_path(p)})
    review_paths, meta_paths = expand_paths(reviews), expand_paths(meta)
    if not review_paths:
        raise ValueError("no review files given")
    options = {"kcore": kcore, "split": split, "strict": strict}
    fingerprint = _fingerprint(review_paths + meta_paths, [images_dir, image_cache_dir], options)
    if output_dir is not None and _is_cached(Path(output_dir), fingerprint):
        logger.info(
            "inputs and options unchanged (fingerprint %s): reusing the prepared data in %s", fingerprint, output_dir
        )
        return load_prepared(output_dir)
    if output_dir is not None:
        check_output_dir(Path(output_dir))

    categories = sorted({category_of(p) for p in review_paths})
    synthetic = categories == [SYNTHETIC_CATEGORY]
    if synthetic:
        logger.warning("preparing the embedded SYNTHETIC sample: generated data, not real Amazon reviews")
    report = ValidationReport(strict=strict)
    ready = [p for p in review_paths if split_file_protocol(p)]
    if ready and len(ready) != len(review_paths):
        raise ValueError("official *_w_his split files cannot be mixed with raw review files")
    if ready:
        x, columns, history_sources = _read_ready_splits(review_paths, split, report)
        dropped: dict[str, int] = {}
    else:
        x, columns, dropped = _read_raw(review_paths, kcore, split, report)
        history_sources = {}
    _check_not_empty(x, review_paths, report, dropped, kcore)
    catalog = _catalog(x, history_sources)
    records = _read_metadata(catalog, meta_paths, report, dropped)
    _report_missing_metadata(catalog, records, x, report)
    for path, file_report in report.files.items():
        for kind, count in file_report.errors.items():
            reason = f"invalid_{'meta' if path in meta_paths else 'review'}_{kind}"
            dropped[reason] = dropped.get(reason, 0) + count
    local = local_images(images_dir)
    items = build_item_table(
        item_row(asin, *records.get(asin, (category_of(source[0]), None)), local, image_cache_dir)
        for asin, source in catalog.items()
    )

    splits = DatasetDict({name: Dataset.from_dict(columns[name], features=SPLIT_FEATURES) for name in SPLIT_NAMES})
    stats = {
        "name": "+".join(categories),
        "synthetic": synthetic,
        "split": split,
        "kcore": None if ready else kcore,  # official split files are taken as they are
        **sequence_stats(x),
        "items": len(items),
        "rows": {name: len(splits[name]) for name in SPLIT_NAMES},
        "items_with_metadata": sum(items["has_metadata"]),
        "items_with_image": sum(path is not None for path in items["image_path"]),
        "dropped": dropped,
        "files_unreadable": [p for p, f in report.files.items() if f.file_error],
        "validation": report.to_dict(),
        "fingerprint": fingerprint,
        "hub_datasets": hub_datasets,  # e.g. ["datasets/McAuley-Lab/Amazon-Reviews-2023"] for the model card
    }
    report.log()
    logger.info("prepared data:\n%s", format_stats(stats))
    data = PreparedData(splits, items, stats, report)
    if output_dir is None:
        return data
    _save(data, Path(output_dir))
    return load_prepared(output_dir)

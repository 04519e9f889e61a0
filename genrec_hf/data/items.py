"""The item table: one row per catalog item with its text fields and its image reference; built from metadata, or
read from whatever form a user hands one in."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from datasets import Dataset, Features, List, Value

from .images import cache_path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")  # preference order when several exist
IMAGE_SIZES = ("hi_res", "large", "thumb")
ITEM_FEATURES = Features(
    {
        "parent_asin": Value("string"),
        "title": Value("string"),
        "features": List(Value("string")),
        "description": List(Value("string")),
        "categories": List(Value("string")),
        "store": Value("string"),
        "details": Value("string"),
        "main_category": Value("string"),
        "category": Value("string"),
        "image_url": Value("string"),
        "image_path": Value("string"),
        "has_metadata": Value("bool"),
    }
)


def image_url(images: Iterable | None) -> str | None:
    """The first image's URL, preferring `hi_res`, then `large`, then `thumb` (later images if it has none)."""
    for image in images or ():
        if isinstance(image, Mapping):
            for size in IMAGE_SIZES:
                if isinstance(image.get(size), str) and image[size]:
                    return image[size]
    return None


def local_images(images_dir: str | Path | None) -> dict[str, str]:
    """`parent_asin -> path` for the photos `<images_dir>/<parent_asin>.(jpg|jpeg|png|webp)`."""
    if not images_dir:
        return {}
    photos = [p for p in Path(images_dir).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    found: dict[str, str] = {}
    for path in sorted(photos, key=lambda p: IMAGE_EXTENSIONS.index(p.suffix.lower())):
        found.setdefault(path.stem, str(path.resolve()))
    return found


def item_row(
    parent_asin: str, category: str, record: Mapping | None, local: Mapping[str, str], cache_dir: str | Path | None
) -> dict:
    """One item-table row; an item without metadata keeps empty text fields and `has_metadata=False`."""
    record = record or {}
    url = image_url(record.get("images"))
    path = local.get(parent_asin)
    if path is None and url and cache_dir and cache_path(url, cache_dir).exists():
        path = str(cache_path(url, cache_dir).resolve())
    return {
        "parent_asin": parent_asin,
        "title": record.get("title"),
        "features": record.get("features") or [],
        "description": record.get("description") or [],
        "categories": record.get("categories") or [],
        "store": record.get("store"),
        "details": json.dumps(record.get("details") or {}, ensure_ascii=False),
        "main_category": record.get("main_category"),
        "category": category,
        "image_url": url,
        "image_path": path,
        "has_metadata": bool(record),
    }


def build_item_table(rows: Iterable[dict]) -> Dataset:
    """The item table, sorted by `parent_asin`."""
    rows = sorted(rows, key=lambda row: row["parent_asin"])
    columns = {name: [row[name] for row in rows] for name in ITEM_FEATURES}
    return Dataset.from_dict(columns, features=ITEM_FEATURES)


def load_item_table(source) -> Sequence[Mapping]:
    """Item records from a list of dicts, a `datasets.Dataset`, a folder saved with `Dataset.save_to_disk` (or a
    prepared-data folder holding one as `items/`), or a JSON / JSON-lines file (optionally `.gz`). Every record needs
    a `parent_asin`; text fields and `image_path` are optional."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir() and (path / "items").is_dir():
            path = path / "items"  # a prepared-data folder (splits/, items/)
        if path.is_dir():
            from datasets import load_from_disk

            source = load_from_disk(str(path))
        else:
            source = read_json_records(path)
    columns = getattr(source, "column_names", None)
    if columns is not None and "parent_asin" not in columns:
        raise ValueError(f"the item table has no parent_asin column (columns: {columns})")
    if columns is None:
        source = list(source)
        for number, record in enumerate(source, 1):
            if not isinstance(record, Mapping) or not record.get("parent_asin"):
                raise ValueError(f"item record {number} has no parent_asin: {str(record)[:200]}")
    return source


def read_json_records(path: Path) -> list[dict]:
    """The records of a JSON array file or a JSON-lines file (optionally `.gz`); a bad line is named."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        text = handle.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON record ({error})") from None
    return records


def item_column(table: Sequence[Mapping], name: str) -> list:
    """One field of every record (`None` where a record or the table lacks it)."""
    if getattr(table, "column_names", None) is not None:
        return list(table[name]) if name in table.column_names else [None] * len(table)
    return [record.get(name) for record in table]


def select_items(table: Sequence[Mapping], positions: Sequence[int]) -> Sequence[Mapping]:
    """The records at `positions`, as a `Dataset` when the table is one."""
    return table.select(positions) if hasattr(table, "select") else [table[i] for i in positions]

"""The item table: one row per catalog item with its text fields and its image reference."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
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

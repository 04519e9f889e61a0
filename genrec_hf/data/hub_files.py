"""Data files on the Hugging Face Hub: `hf://` paths, and the Amazon Reviews 2023 files of a category by name.

Files are downloaded with `huggingface_hub.hf_hub_download` (cached, resumed after an interruption, with a progress
bar; `HF_HUB_OFFLINE=1` reads the cache only, `HF_ENDPOINT` picks the server). The readers then read the cached
copies, so a Hub file is validated exactly like a local one.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
from pathlib import Path

AMAZON_REVIEWS_2023 = "McAuley-Lab/Amazon-Reviews-2023"
# The categories of Amazon Reviews 2023 (https://amazon-reviews-2023.github.io/), as its file names spell them.
AMAZON_CATEGORIES = (
    "All_Beauty", "Amazon_Fashion", "Appliances", "Arts_Crafts_and_Sewing", "Automotive", "Baby_Products",
    "Beauty_and_Personal_Care", "Books", "CDs_and_Vinyl", "Cell_Phones_and_Accessories",
    "Clothing_Shoes_and_Jewelry", "Digital_Music", "Electronics", "Gift_Cards", "Grocery_and_Gourmet_Food",
    "Handmade_Products", "Health_and_Household", "Health_and_Personal_Care", "Home_and_Kitchen",
    "Industrial_and_Scientific", "Kindle_Store", "Magazine_Subscriptions", "Movies_and_TV", "Musical_Instruments",
    "Office_Products", "Patio_Lawn_and_Garden", "Pet_Supplies", "Software", "Sports_and_Outdoors",
    "Subscription_Boxes", "Tools_and_Home_Improvement", "Toys_and_Games", "Video_Games", "Unknown",
)  # fmt: skip
# Official 5-core splits with history, by split protocol (the folder names of the dataset repository).
SPLIT_FOLDERS = {"leave_one_out": "last_out_w_his", "timestamp": "timestamp_w_his"}

HUB_PATH = re.compile(
    r"^hf://(?:(?P<type>datasets|models|spaces)/)?(?P<repo>[^/@]+/[^/@]+)(?:@(?P<rev>[^/]+))?/(?P<file>.+)$"
)


def is_hub_path(path: str | os.PathLike) -> bool:
    return str(path).startswith("hf://")


def hub_path_repo(path: str) -> str:
    """`"datasets/owner/name"` of an `hf://` path (the repository type and id)."""
    match = _parse(path)
    return f"{match['type'] or 'models'}/{match['repo']}"


def _parse(path: str) -> re.Match:
    match = HUB_PATH.match(path)
    if not match:
        raise ValueError(f"{path!r} is not an hf://[datasets/]<owner>/<name>[@<revision>]/<file> path")
    return match


def download_hub_path(path: str) -> list[str]:
    """Local (cached) copies of the file or glob an `hf://` path names, e.g.
    `hf://datasets/McAuley-Lab/Amazon-Reviews-2023/raw/review_categories/All_Beauty.jsonl`.

    Raises `FileNotFoundError` with the reason (no such file or repository, or not cached while offline).
    """
    from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    match = _parse(path)
    repo_type = (match["type"] or "models").removesuffix("s")
    repo_id, revision, pattern = match["repo"], match["rev"], match["file"]
    location = dict(repo_id=repo_id, repo_type=repo_type, revision=revision)
    try:
        if not glob.has_magic(pattern):
            return [hf_hub_download(filename=pattern, **location)]
        if constants.HF_HUB_OFFLINE:  # a glob offline matches what the cached snapshot holds
            snapshot = Path(snapshot_download(local_files_only=True, **location))
            files = [str(p.relative_to(snapshot)) for p in snapshot.rglob("*") if p.is_file()]
        else:
            files = HfApi().list_repo_files(**location)
        matches = sorted(f for f in files if fnmatch.fnmatchcase(f, pattern))
        if not matches:
            raise FileNotFoundError(f"no file of {repo_id} matches {pattern!r}")
        return [hf_hub_download(filename=name, **location) for name in matches]
    except LocalEntryNotFoundError:
        raise FileNotFoundError(
            f"{path} is not in the local Hugging Face cache and the Hub cannot be reached (offline: "
            "HF_HUB_OFFLINE=1 or no network); download it once with a network"
        ) from None
    except (EntryNotFoundError, HfHubHTTPError) as error:
        raise FileNotFoundError(f"{path}: {str(error).splitlines()[0]}") from None


def category_paths(categories: list[str], split: str | None = None) -> tuple[list[str], list[str]]:
    """`(reviews, meta)` `hf://` paths of Amazon Reviews 2023 categories (none for none): the raw reviews, or with
    `split` the official 5-core train / valid / test files of that protocol, and the raw metadata."""
    unknown = [c for c in categories if c not in AMAZON_CATEGORIES]
    if unknown:
        raise ValueError(
            f"unknown Amazon Reviews 2023 categories {unknown}; choose from {', '.join(AMAZON_CATEGORIES)}"
        )
    root = f"hf://datasets/{AMAZON_REVIEWS_2023}"
    if split is None:
        reviews = [f"{root}/raw/review_categories/{c}.jsonl" for c in categories]
    else:
        folder = SPLIT_FOLDERS[split]
        reviews = [
            f"{root}/benchmark/5core/{folder}/{c}.{s}.csv" for c in categories for s in ("train", "valid", "test")
        ]
    return reviews, [f"{root}/raw/meta_categories/meta_{c}.jsonl" for c in categories]


__all__ = [
    "AMAZON_CATEGORIES", "AMAZON_REVIEWS_2023", "category_paths", "download_hub_path", "hub_path_repo", "is_hub_path"
]  # fmt: skip

"""The embedded SYNTHETIC sample: deterministic, in the raw 2023 schema, learnable beyond popularity."""

import gzip
import json
from collections import Counter

from PIL import Image

from genrec_hf.commands.prepare_data import main as prepare_data_main
from genrec_hf.data import prepare_dataset
from genrec_hf.data.synthetic import CLUSTERS, write_synthetic_sample

REVIEW_KEYS = ["rating", "title", "text", "images", "asin", "parent_asin", "user_id", "timestamp", "helpful_vote",
               "verified_purchase"]  # fmt: skip
META_KEYS = ["main_category", "title", "average_rating", "rating_number", "features", "description", "price",
             "images", "videos", "store", "categories", "details", "parent_asin", "bought_together"]  # fmt: skip


def files(folder) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path):
    write_synthetic_sample(tmp_path / "a", num_users=60, num_items=40)
    write_synthetic_sample(tmp_path / "b", num_users=60, num_items=40)
    write_synthetic_sample(tmp_path / "c", num_users=60, num_items=40, seed=1)
    assert files(tmp_path / "a") == files(tmp_path / "b")
    assert files(tmp_path / "a")["Synthetic_Sample.jsonl.gz"] != files(tmp_path / "c")["Synthetic_Sample.jsonl.gz"]


def test_default_sample_is_raw_2023_schema_and_prepares(tmp_path):
    reviews, meta, images = write_synthetic_sample(tmp_path)
    with gzip.open(reviews, "rt") as f:
        assert list(json.loads(f.readline())) == REVIEW_KEYS
    with gzip.open(meta, "rt") as f:
        first = json.loads(f.readline())
    assert list(first) == META_KEYS and first["store"] == "Synthetic Sample Store" and "synthetic" in first["title"]
    assert Image.open(images / f"{first['parent_asin']}.png").size == (64, 64)

    data = prepare_dataset(reviews, meta, images_dir=images)
    stats = data.stats
    assert stats["synthetic"] and stats["name"] == "Synthetic_Sample"
    assert 500 <= stats["users"] <= 600 and 250 <= stats["items"] <= 300 and 5000 <= stats["interactions"] <= 8000
    assert stats["items_with_image"] == stats["items"] == stats["items_with_metadata"]

    def cluster(asin: str) -> int:
        return int(asin[3:]) % len(CLUSTERS)

    test = data.splits["test"]
    same_taste = sum(cluster(h[-1]) == cluster(t) for h, t in zip(test["history"], test["target"])) / len(test)
    popular = {a for a, _ in Counter(data.splits["train"]["target"]).most_common(10)}
    popularity_hr10 = sum(t in popular for t in test["target"]) / len(test)
    assert same_taste > 0.7 and popularity_hr10 < 0.2


def test_cli_synthetic_flag(tmp_path, capsys):
    stats = prepare_data_main(["--synthetic", "--output_dir", str(tmp_path), "--split", "timestamp", "--kcore", "5"])
    assert stats["synthetic"] and stats["split"] == "timestamp" and all(stats["rows"].values())
    assert "SYNTHETIC sample" in capsys.readouterr().out
    assert (tmp_path / "synthetic_raw" / "Synthetic_Sample.jsonl.gz").is_file()

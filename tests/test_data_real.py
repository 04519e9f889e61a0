"""The data layer on real Amazon files from `../shared/data`: official 5-core and split reproduced exactly."""

import csv
import gzip
from pathlib import Path

import pytest

from genrec_hf.commands.prepare_data import main as prepare_data_main
from genrec_hf.data import load_prepared, prepare_dataset

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BEAUTY = DATA_DIR / "amazon2023_all_beauty"
GIFT_CARDS = DATA_DIR / "amazon2018_gift_cards_mm"

pytestmark = pytest.mark.skipif(
    not BEAUTY.is_dir(), reason=f"real data folder {DATA_DIR} is absent (it sits beside the repository on dev machines)"
)


def rows(split) -> list[tuple]:
    return sorted(zip(split["user_id"], split["target"], (" ".join(h) for h in split["history"])))


def official_rows(name: str) -> list[tuple]:
    with gzip.open(BEAUTY / f"All_Beauty.5core.last_out_w_his.{name}.csv.gz", "rt") as f:
        return sorted((r["user_id"], r["parent_asin"], r["history"]) for r in csv.DictReader(f))


@pytest.fixture(scope="module")
def beauty(tmp_path_factory):
    raw = BEAUTY / "raw"
    return prepare_dataset(raw / "All_Beauty.jsonl.gz", raw / "meta_All_Beauty.jsonl.gz", tmp_path_factory.mktemp("ab"))


def test_all_beauty_reproduces_official_5core(beauty):
    assert (beauty.stats["users"], beauty.stats["items"], beauty.stats["interactions"]) == (253, 356, 2535)
    assert beauty.stats["dropped"] == {"duplicate": 9, "5-core": 0}
    assert beauty.report.num_rejected == 0 and not beauty.report.items_without_metadata


@pytest.mark.parametrize("name", ["train", "valid", "test"])
def test_all_beauty_leave_one_out_equals_official_split(beauty, name):
    assert rows(beauty.splits[name]) == official_rows(name)


def test_all_beauty_rows_are_chronological_and_typed(beauty):
    test = beauty.splits["test"]
    assert test.features["history"].feature.dtype == "string" and test.features["timestamp"].dtype == "int64"
    last = {u: t for u, t in zip(beauty.splits["valid"]["user_id"], beauty.splits["valid"]["timestamp"])}
    assert all(t >= last[u] for u, t in zip(test["user_id"], test["timestamp"]))
    items = beauty.items
    assert items["parent_asin"] == sorted(items["parent_asin"]) and all(items["has_metadata"])
    assert set(items["category"]) == {"All_Beauty"}


def test_official_csvs_are_read_as_interactions_and_as_ready_splits(beauty):
    meta = BEAUTY / "raw" / "meta_All_Beauty.jsonl.gz"
    from_ratings = prepare_dataset(BEAUTY / "All_Beauty.5core.rating_only.csv.gz", meta)
    ready = prepare_dataset(sorted(BEAUTY.glob("All_Beauty.5core.last_out_w_his.*.csv.gz")), meta)
    for data in (from_ratings, ready):
        assert (data.stats["users"], data.stats["items"], data.stats["interactions"]) == (253, 356, 2535)
        assert all(rows(data.splits[n]) == rows(beauty.splits[n]) for n in ("train", "valid", "test"))
    with pytest.raises(ValueError, match="leave_one_out split"):
        prepare_dataset(BEAUTY / "All_Beauty.5core.last_out_w_his.test.csv.gz", meta, split="timestamp")


def test_timestamp_split_uses_official_cut_points(beauty, tmp_path):
    raw = BEAUTY / "raw"
    data = prepare_dataset(raw / "All_Beauty.jsonl.gz", raw / "meta_All_Beauty.jsonl.gz", split="timestamp")
    t1, t2 = 1628643414042, 1658002729837
    assert all(t < t1 for t in data.splits["train"]["timestamp"])
    assert all(t1 <= t < t2 for t in data.splits["valid"]["timestamp"])
    assert all(t >= t2 for t in data.splits["test"]["timestamp"])
    assert sum(data.stats["rows"].values()) == 2535


def test_gift_cards_5core_and_local_photos():
    raw = GIFT_CARDS / "raw2023"
    reviews, meta = raw / "Gift_Cards.jsonl.gz", raw / "meta_Gift_Cards.jsonl.gz"
    data = prepare_dataset(reviews, meta, images_dir=GIFT_CARDS / "images")
    assert (data.stats["users"], data.stats["items"], data.stats["interactions"]) == (453, 147, 2941)
    photos = {p.stem for p in (GIFT_CARDS / "images").glob("*.jpg")}
    for asin, path in zip(data.items["parent_asin"], data.items["image_path"]):
        assert (path is not None) == (asin in photos)
        assert path is None or Path(path) == (GIFT_CARDS / "images" / f"{asin}.jpg").resolve()
    assert data.stats["items_with_image"] == 114  # 33 of the 147 items have no photo


def test_cli_on_all_beauty_writes_splits_and_matching_stats(tmp_path, capsys):
    raw = BEAUTY / "raw"
    stats = prepare_data_main(
        [
            "--reviews",
            str(raw / "All_Beauty.jsonl.gz"),
            "--meta",
            str(raw / "meta_*.jsonl.gz"),
            "--output_dir",
            str(tmp_path),
        ]  # fmt: skip
    )
    assert (stats["users"], stats["items"], stats["interactions"]) == (253, 356, 2535)
    assert "users 253, items 356, interactions 2,535" in capsys.readouterr().out
    saved = load_prepared(tmp_path)
    assert saved.stats == stats and rows(saved.splits["test"]) == official_rows("test")

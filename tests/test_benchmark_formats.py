"""The benchmark readers on the real published files (skipped when ../shared/data is absent)."""

import math
from collections import Counter
from pathlib import Path

import pytest

from genrec_hf.data import load_prepared
from genrec_hf.data.benchmark_formats import load_beauty_ids, load_unisrec, read_beauty_items

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BEAUTY = DATA / "amazon2014_beauty_ids" / "Beauty.txt"
SCIENTIFIC = DATA / "amazon2018_scientific_unisrec"

BEAUTY_ITEMS = DATA / "amazon2014_beauty_ids" / "Beauty_items.jsonl.gz"
needs_beauty = pytest.mark.skipif(not BEAUTY.is_file(), reason=f"{BEAUTY} is absent (shared real data not present)")
needs_scientific = pytest.mark.skipif(
    not SCIENTIFIC.is_dir(), reason=f"{SCIENTIFIC} is absent (shared real data not present)"
)


@pytest.fixture(scope="module")
def beauty():
    return load_beauty_ids(BEAUTY)


@pytest.fixture(scope="module")
def scientific():
    return load_unisrec(SCIENTIFIC, "Scientific")


def _sequences(path: Path) -> dict[str, list[str]]:
    return {fields[0]: fields[1:] for fields in (line.split() for line in path.open()) if fields}


@needs_beauty
def test_beauty_counts_and_leave_one_out(beauty):
    stats = beauty.stats
    assert (stats["users"], stats["items"], stats["interactions"]) == (22_363, 12_101, 198_502)
    assert stats["rows"] == {"train": 198_502 - 2 * 22_363, "valid": 22_363, "test": 22_363}
    sequences = _sequences(BEAUTY)
    test, valid = beauty.splits["test"], beauty.splits["valid"]
    for user, history, target in zip(test["user_id"], test["history"], test["target"]):
        assert [*history, target] == sequences[user]  # test = last item, history = everything before it
    for user, history, target in zip(valid["user_id"], valid["history"], valid["target"]):
        assert [*history, target] == sequences[user][:-1]  # valid = second to last
    train = beauty.splits["train"]
    longest = Counter(train["user_id"])
    assert all(longest[user] == len(sequence) - 2 for user, sequence in sequences.items())
    assert max(train["timestamp"]) < max(test["timestamp"])
    assert all(math.isnan(r) for r in test["rating"][:10])


@needs_beauty
def test_beauty_items_have_no_text(beauty):
    items = beauty.items
    assert len(items) == 12_101 and len(set(items["parent_asin"])) == 12_101
    assert not any(items["has_metadata"]) and not any(items["title"]) and not any(items["image_path"])
    assert beauty.stats["items_with_metadata"] == 0


@needs_scientific
def test_scientific_keeps_the_given_splits(scientific):
    stats = scientific.stats
    assert (stats["users"], stats["items"]) == (8_442, 4_385)
    assert stats["interactions"] == 59_427  # first item + one target per .inter row: 8,442 + 34,101 + 2 x 8,442
    assert stats["rows"] == {"train": 34_101, "valid": 8_442, "test": 8_442}
    users = dict(line.rstrip("\n").split("\t") for line in (SCIENTIFIC / "Scientific.user2index").open())
    item_lines = (SCIENTIFIC / "Scientific.item2index").open()
    items = {index: asin for asin, index in (line.rstrip("\n").split("\t") for line in item_lines)}
    first = (SCIENTIFIC / "Scientific.test.inter").open().readlines()[1].rstrip("\n").split("\t")
    row = scientific.splits["test"][0]
    reverse_users = {index: user for user, index in users.items()}
    assert row["user_id"] == reverse_users[first[0]]
    assert row["history"] == [items[i] for i in first[1].split()] and row["target"] == items[first[2]]
    # valid target + valid history = test history (histories truncated to 50 keep their most recent items)
    valid = {u: (h, t) for u, h, t in zip(*(scientific.splits["valid"][c] for c in ("user_id", "history", "target")))}
    for user, history in zip(scientific.splits["test"]["user_id"], scientific.splits["test"]["history"]):
        assert history == [*valid[user][0], valid[user][1]][-len(history) :]


@needs_scientific
def test_scientific_item_text_is_the_title(scientific):
    items = scientific.items
    assert len(items) == 4_385 and all(items["has_metadata"])
    text = dict(line.rstrip("\n").split("\t", 1) for line in list((SCIENTIFIC / "Scientific.text").open())[1:])
    row = items[0]
    assert row["title"] == text[row["parent_asin"]].strip() and row["title"]


@needs_scientific
def test_saved_layout_loads_back(scientific, tmp_path):
    from genrec_hf.data.benchmark_formats import save_prepared

    save_prepared(scientific, tmp_path / "again")
    assert {p.name for p in (tmp_path / "again").iterdir()} == {".genrec_prepared", "splits", "items", "stats.json"}
    again = load_prepared(tmp_path / "again")  # what scripts/train.py --data_dir reads
    assert again.stats == scientific.stats
    for column in ("user_id", "history", "target", "timestamp"):
        assert again.splits["test"][column] == scientific.splits["test"][column]
    assert again.items.to_list() == scientific.items.to_list()


def test_bad_beauty_lines_are_named(tmp_path):
    path = tmp_path / "Beauty.txt"
    path.write_text("1 1 2 3 4\n2 5 6\n")
    with pytest.raises(ValueError, match=r"Beauty.txt:2: a user needs at least 3 items"):
        load_beauty_ids(path)
    path.write_text("1 1 2 3\n1 4 5 6\n")
    with pytest.raises(ValueError, match=r"Beauty.txt:2: user 1 appears twice"):
        load_beauty_ids(path)


@needs_beauty
def test_beauty_item_texts_join_the_ids_of_beauty_txt():
    data = load_beauty_ids(BEAUTY, items=BEAUTY_ITEMS)
    items = {row["parent_asin"]: row for row in data.items}
    assert data.stats["items_with_metadata"] == len(items) == 12101
    # item 1 of Beauty.txt is the OPI "Simmer and Shimmer" lacquer in the published item file
    assert items["1"]["title"] == "OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce"
    assert items["1"]["store"] == "OPI" and items["1"]["categories"] == ["Beauty", "Makeup", "Nails", "Nail Polish"]
    assert sum(row["store"] is None for row in data.items) == 2098 + 20  # no brand, or "Unknown"
    ids_only = load_beauty_ids(BEAUTY)
    assert data.splits["test"]["target"] == ids_only.splits["test"]["target"]


def test_bad_beauty_item_lines_are_named(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text('{"item_id": 1, "title": "a"}\n{"title": "no id"}\n')
    with pytest.raises(ValueError, match=r"items.jsonl:2: not an item record"):
        read_beauty_items(path)
    path.write_text('{"item_id": 1, "title": "a"}\n{"item_id": 1, "title": "b"}\n')
    with pytest.raises(ValueError, match=r"items.jsonl:2: item_id 1 is not a new integer id"):
        read_beauty_items(path)
    beauty = tmp_path / "Beauty.txt"
    beauty.write_text("1 1 2 3\n")
    path.write_text('{"item_id": 1, "title": "a"}\n')
    with pytest.raises(ValueError, match=r"2 items of Beauty.txt have no record"):
        load_beauty_ids(beauty, items=path)

"""Dedup, k-core, ordering, split protocols and the fingerprint cache, on small hand-made files."""

import logging

import pytest
from test_data_validation import meta, review, write_gz

from genrec_hf.data import load_prepared, prepare_dataset
from genrec_hf.data.processing import TIMESTAMP_CUTS, Interactions, deduplicate, k_core
from genrec_hf.data.readers import Interaction, category_of, expand_paths

T1, T2 = TIMESTAMP_CUTS


def interactions(rows: list[tuple[str, str, int]]) -> Interactions:
    return Interactions.from_stream(Interaction(u, i, 5.0, t, "f", n) for n, (u, i, t) in enumerate(rows, 1))


def pairs(x: Interactions) -> list[tuple[str, str, int]]:
    return [(x.users[u], x.items[i], int(t)) for u, i, t in zip(x.user, x.item, x.timestamp)]


def test_deduplicate_keeps_the_earliest_and_file_order_on_ties():
    x = interactions([("u", "A", 5), ("u", "B", 1), ("u", "A", 2), ("v", "A", 3), ("u", "A", 2)])
    assert pairs(deduplicate(x)) == [("u", "B", 1), ("u", "A", 2), ("v", "A", 3)]


def test_k_core_is_iterative():
    # With k=2: item C has one interaction; dropping it leaves user w with one, which then drops item B's count.
    x = interactions([("u", "A", 1), ("u", "B", 2), ("v", "A", 3), ("v", "B", 4), ("w", "B", 5), ("w", "C", 6)])
    assert sorted({u for u, _, _ in pairs(k_core(x, 2))}) == ["u", "v"]
    assert len(k_core(x, 0)) == len(k_core(x, 1)) == 6


def test_sequences_are_chronological_with_file_order_tie_break(tmp_path):
    lines = [review("u", "C", 30), review("u", "A", 10), review("u", "B", 10), review("u", "D", 40)]
    reviews = write_gz(tmp_path / "Toys.jsonl.gz", lines)
    data = prepare_dataset(reviews, write_gz(tmp_path / "meta_Toys.jsonl.gz", [meta(i) for i in "ABCD"]), kcore=0)
    assert data.splits["train"]["history"] == [[], ["A"]] and data.splits["train"]["target"] == ["A", "B"]
    valid = {"user_id": "u", "history": ["A", "B"], "target": "C", "timestamp": 30, "rating": 5.0}
    assert data.splits["valid"][0] == valid
    assert data.splits["test"][0]["history"] == ["A", "B", "C"]


def test_timestamp_split_keeps_earlier_interactions_in_histories(tmp_path):
    times = [T1 - 2, T1 - 1, T1, T2 - 1, T2, T2 + 5]
    reviews = write_gz(tmp_path / "Toys.jsonl.gz", [review("u", f"I{n}", t) for n, t in enumerate(times)])
    metas = write_gz(tmp_path / "meta_Toys.jsonl.gz", [meta(f"I{n}") for n in range(6)])
    splits = prepare_dataset(reviews, metas, kcore=0, split="timestamp").splits
    assert splits["train"]["target"] == ["I0", "I1"] and splits["valid"]["target"] == ["I2", "I3"]
    assert splits["test"]["history"] == [["I0", "I1", "I2", "I3"], ["I0", "I1", "I2", "I3", "I4"]]


def test_categories_merge_from_file_names(tmp_path):
    (tmp_path / "a").mkdir()
    write_gz(tmp_path / "a" / "Handmade_Products.jsonl.gz", [review("u", "A", 1), review("u", "B", 2)])
    write_gz(tmp_path / "a" / "Health_and_Personal_Care.jsonl.gz", [review("u", "C", 3)])
    write_gz(tmp_path / "meta_Handmade_Products.jsonl.gz", [meta("A"), meta("B")])
    write_gz(tmp_path / "meta_Health_and_Personal_Care.jsonl.gz", [meta("C")])
    data = prepare_dataset(str(tmp_path / "a" / "*.jsonl.gz"), str(tmp_path / "meta_*.jsonl.gz"), kcore=0)
    assert data.items["category"] == ["Handmade_Products", "Handmade_Products", "Health_and_Personal_Care"]
    assert data.stats["name"] == "Handmade_Products+Health_and_Personal_Care"
    assert category_of("x/All_Beauty.5core.rating_only.csv.gz") == "All_Beauty"
    assert expand_paths(None) == []


def test_second_identical_prepare_does_no_work(tmp_path, monkeypatch, caplog):
    reviews = write_gz(tmp_path / "Toys.jsonl.gz", [review(u, i, n) for n, (u, i) in enumerate(
        [(u, i) for u in "uvw" for i in "ABC"])])  # fmt: skip
    metas = write_gz(tmp_path / "meta_Toys.jsonl.gz", [meta(i) for i in "ABC"])
    first = prepare_dataset(reviews, metas, tmp_path / "out", kcore=2)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".genrec_prepared", "items", "splits", "stats.json"]

    def no_work(*args, **kwargs):
        raise AssertionError("the cached result should have been reused")

    with monkeypatch.context() as patched, caplog.at_level(logging.INFO, logger="genrec_hf.data"):
        patched.setattr(Interactions, "from_stream", no_work)
        second = prepare_dataset(reviews, metas, tmp_path / "out", kcore=2)
    assert "reusing the prepared data" in caplog.text
    assert second.stats == first.stats and second.splits["test"][:] == first.splits["test"][:]
    assert load_prepared(tmp_path / "out").items["parent_asin"] == ["A", "B", "C"]
    changed = prepare_dataset(reviews, metas, tmp_path / "out", kcore=3)
    assert changed.stats["fingerprint"] != first.stats["fingerprint"] and changed.stats["kcore"] == 3


def test_a_k_core_that_leaves_nothing_is_an_error_that_says_so(tmp_path):
    reviews = write_gz(tmp_path / "Toys.jsonl.gz", [review("u", "A", 1), review("v", "B", 2)])
    with pytest.raises(ValueError, match=r"2 valid reviews were read.*5-core 2.*lower kcore"):
        prepare_dataset(reviews, write_gz(tmp_path / "meta_Toys.jsonl.gz", [meta("A")]), tmp_path / "out")
    assert not (tmp_path / "out").exists()

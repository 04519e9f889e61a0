"""Bad inputs are counted per file with line numbers, never coerced; strict mode fails on the first."""

import gzip
import json

import pytest

from genrec_hf.data import prepare_dataset


def review(user: str, item: str, timestamp=1_600_000_000_000, rating=5.0) -> str:
    return json.dumps({"rating": rating, "title": "t", "text": "secret review text", "images": [], "asin": item,
                       "parent_asin": item, "user_id": user, "timestamp": timestamp})  # fmt: skip


def meta(item: str, **fields) -> str:
    return json.dumps({"main_category": "Toys", "title": f"title {item}", "features": ["f"], "description": [],
                       "images": [{"thumb": f"http://x/{item}_t.jpg", "large": f"http://x/{item}_l.jpg",
                                   "hi_res": None, "variant": "MAIN"}],
                       "store": "S", "categories": [], "details": {"k": 1}, "parent_asin": item, **fields})  # fmt: skip


def write_gz(path, lines: list[str]):
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.fixture
def bad_files(tmp_path):
    reviews = [review("u1", "A", 1), review("u1", "B", 2), review("u2", "A", 3)]
    no_item = json.dumps({"user_id": "u3", "rating": 4.0, "timestamp": 5})
    reviews += ["{not json", no_item, review("u3", "A", "1600000000000")]
    reviews += [review("u3", "C", 7), review("u4", "B", 8, rating=True)]
    metas = [meta("A"), meta("B"), meta("D", features="not a list")]
    return write_gz(tmp_path / "Toys.jsonl.gz", reviews), write_gz(tmp_path / "meta_Toys.jsonl.gz", metas)


def test_report_names_each_problem_with_file_and_line(bad_files):
    reviews, metas = bad_files
    data = prepare_dataset(reviews, metas, kcore=0)
    files = data.report.files
    found = {(e["line"], e["kind"], e["field"]) for e in files[str(reviews)].examples}
    assert found == {(4, "malformed_json", "<line>"), (5, "missing_field", "parent_asin"),
                     (6, "wrong_type", "timestamp"), (8, "wrong_type", "rating")}  # fmt: skip
    assert files[str(reviews)].lines == 8 and files[str(reviews)].valid == 4
    assert {(e["line"], e["field"]) for e in files[str(metas)].examples} == {(3, "features")}
    assert data.report.items_without_metadata == ["C"] and data.report.interactions_without_metadata == 1
    assert data.stats["dropped"] == {"duplicate": 0, "0-core": 0, "invalid_review_malformed_json": 1,
                                     "invalid_review_missing_field": 1, "invalid_review_wrong_type": 2,
                                     "invalid_meta_wrong_type": 1}  # fmt: skip
    text = data.report.format()
    assert f"{reviews}:6 wrong_type (timestamp)" in text and "C" in text.splitlines()[-1]
    item_c = data.items.filter(lambda r: r["parent_asin"] == "C")[0]
    assert not item_c["has_metadata"] and item_c["category"] == "Toys" and item_c["title"] is None
    item_a = data.items[0]
    assert item_a["image_url"] == "http://x/A_l.jpg" and item_a["details"] == '{"k": 1}' and item_a["has_metadata"]
    assert "secret" not in str(data.splits["train"].to_dict())


def test_strict_mode_raises_with_file_line_and_field(bad_files, tmp_path):
    reviews, metas = bad_files
    with pytest.raises(ValueError, match=rf"{reviews}:4: malformed_json"):
        prepare_dataset(reviews, metas, kcore=0, strict=True)
    with pytest.raises(ValueError, match=rf"{metas}:3: wrong_type \(features\)"):
        prepare_dataset(write_gz(tmp_path / "Ok.jsonl.gz", [review("u1", "A")]), metas, kcore=0, strict=True)
    clean_meta = write_gz(tmp_path / "meta_Clean.jsonl.gz", [meta("A"), meta("B")])
    clean = write_gz(tmp_path / "Clean.jsonl.gz", [review("u1", "A"), review("u1", "C")])
    with pytest.raises(ValueError, match=rf"{clean}:2: item C \(parent_asin\) has no metadata"):
        prepare_dataset(clean, clean_meta, kcore=0, strict=True)
    typed = write_gz(tmp_path / "Typed.jsonl.gz", [review("u1", "A"), review("u1", "B", "1600000000000")])
    with pytest.raises(ValueError, match=rf"{typed}:2: wrong_type \(timestamp\)"):
        prepare_dataset(typed, clean_meta, kcore=0, strict=True)


def test_truncated_gzip_is_reported_and_what_was_read_is_kept(tmp_path):
    lines = [review(f"u{i % 7}", f"I{i % 11}", i) for i in range(3000)]
    full = write_gz(tmp_path / "full.jsonl.gz", lines).read_bytes()
    truncated = tmp_path / "Cut.jsonl.gz"
    truncated.write_bytes(full[: len(full) // 2])
    metas = write_gz(tmp_path / "meta_Cut.jsonl.gz", [meta(f"I{i}") for i in range(11)])
    data = prepare_dataset(truncated, metas, kcore=0)
    report = data.report.files[str(truncated)]
    assert report.file_error and "EOFError" in report.file_error and 0 < report.valid < 3000
    assert data.stats["files_unreadable"] == [str(truncated)]
    assert data.stats["interactions"] <= report.valid
    with pytest.raises(ValueError, match=rf"{truncated}: unreadable after line \d+: EOFError"):
        prepare_dataset(truncated, metas, kcore=0, strict=True)


def test_missing_inputs_and_bad_options_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        prepare_dataset(tmp_path / "nothing_here*.jsonl.gz", None)
    with pytest.raises(ValueError, match="split must be one of"):
        prepare_dataset(tmp_path / "x.jsonl", None, split="random")

"""Every local file form the Hub and the official release use gives the same prepared data as the `.jsonl.gz` files:
plain and gzipped JSON lines and CSVs, globs, and the official split folders (`last_out_w_his/<Category>.train.csv`).
`hf://` paths and `--categories` downloads: `test_hub_data.py`."""

import gzip
import shutil
from pathlib import Path

import pytest

from genrec_hf.data import prepare_dataset

BEAUTY = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "amazon2023_all_beauty"
pytestmark = pytest.mark.skipif(not BEAUTY.is_dir(), reason=f"real data folder {BEAUTY} is absent (fresh clone)")
SPLITS = ("train", "valid", "test")


def unzip(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(gzip.decompress(source.read_bytes()))
    return target


def content(data) -> tuple:
    """What a model sees of prepared data: every split row and every item's text."""
    rows = {
        name: sorted(zip(s["user_id"], s["target"], map(tuple, s["history"]), s["timestamp"], s["rating"]))
        for name, s in data.splits.items()
    }
    items = list(zip(data.items["parent_asin"], data.items["title"], data.items["category"]))
    return rows, items


@pytest.fixture(scope="module")
def reference():
    raw = BEAUTY / "raw"
    return content(prepare_dataset(raw / "All_Beauty.jsonl.gz", raw / "meta_All_Beauty.jsonl.gz"))


@pytest.fixture(scope="module")
def hub_layout(tmp_path_factory) -> Path:
    """All_Beauty laid out as the Hub dataset publishes it (uncompressed files, protocol given by the folder)."""
    root = tmp_path_factory.mktemp("hub_layout")
    unzip(BEAUTY / "raw" / "All_Beauty.jsonl.gz", root / "raw" / "review_categories" / "All_Beauty.jsonl")
    unzip(BEAUTY / "raw" / "meta_All_Beauty.jsonl.gz", root / "raw" / "meta_categories" / "meta_All_Beauty.jsonl")
    unzip(BEAUTY / "All_Beauty.5core.rating_only.csv.gz", root / "benchmark/5core/rating_only/All_Beauty.csv")
    for split in SPLITS:
        source = BEAUTY / f"All_Beauty.5core.last_out_w_his.{split}.csv.gz"
        unzip(source, root / "benchmark/5core/last_out_w_his" / f"All_Beauty.{split}.csv")
        shutil.copy(source, root / "benchmark/5core/last_out_w_his" / f"All_Beauty.{split}.csv.gz")
    return root


@pytest.mark.parametrize(
    "reviews",
    [
        "raw/review_categories/All_Beauty.jsonl",  # plain JSON lines, as the Hub serves them
        "raw/review_categories/*.jsonl",  # a glob
        "benchmark/5core/rating_only/All_Beauty.csv",  # a plain interaction CSV
        "benchmark/5core/last_out_w_his/All_Beauty.*.csv",  # the official split folder, plain
        "benchmark/5core/last_out_w_his/All_Beauty.*.csv.gz",  # ... and gzipped
    ],
)
def test_each_file_form_gives_the_same_prepared_data(hub_layout, reference, reviews):
    meta = hub_layout / "raw" / "meta_categories" / "meta_All_Beauty.jsonl"
    data = prepare_dataset(str(hub_layout / reviews), meta)
    assert content(data) == reference
    assert data.report.num_rejected == 0 and all(f.valid for f in data.report.files.values())
    assert (data.stats["users"], data.stats["items"], data.stats["interactions"]) == (253, 356, 2535)


def test_gzipped_interaction_csv_gives_the_same_prepared_data(reference):
    data = prepare_dataset(BEAUTY / "All_Beauty.5core.rating_only.csv.gz", BEAUTY / "raw" / "meta_All_Beauty.jsonl.gz")
    assert content(data) == reference


def test_a_split_folder_is_checked_against_the_protocol(hub_layout):
    files = sorted((hub_layout / "benchmark/5core/last_out_w_his").glob("*.csv"))
    with pytest.raises(ValueError, match="holds a leave_one_out split"):
        prepare_dataset(files, None, split="timestamp")


def test_plain_csv_reports_bad_lines_like_gzipped_files(tmp_path):
    text = "user_id,parent_asin,rating,timestamp\nU1,I1,5.0,1600000000000\nU1,I2,five,1600000000001\nU2,I1\n"
    (tmp_path / "bad.csv").write_text(text)
    data = prepare_dataset(tmp_path / "bad.csv", None, kcore=0)
    errors = data.report.files[str(tmp_path / "bad.csv")].errors
    assert errors == {"wrong_type": 1, "malformed_json": 1} and data.report.num_rejected == 2
    with pytest.raises(ValueError, match=r"bad\.csv:3: wrong_type \(rating\)"):
        prepare_dataset(tmp_path / "bad.csv", None, kcore=0, strict=True)


def test_embedded_example_is_the_official_5core(reference):
    """The All_Beauty files shipped in the repository (examples/all_beauty_2023) are the shared data's."""
    example = Path(__file__).resolve().parents[1] / "examples" / "all_beauty_2023"
    data = prepare_dataset(example / "All_Beauty.jsonl.gz", example / "meta_All_Beauty.jsonl.gz")
    assert (data.stats["users"], data.stats["items"], data.stats["interactions"]) == (253, 356, 2535)
    assert content(data) == reference and all(data.items["title"])

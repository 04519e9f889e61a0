"""`--categories` and `hf://` paths against a stand-in for the Hub on 127.0.0.1 (`fixtures.hub_server`, pointed to by
`HF_ENDPOINT`) that serves the All_Beauty files as the dataset `McAuley-Lab/Amazon-Reviews-2023` publishes them
(uncompressed, official splits in `benchmark/5core/last_out_w_his/`). The commands run in fresh processes, as a user
runs them, through `huggingface_hub`'s real download and cache code; then offline from the warm cache."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.hub_server import HubServer

from genrec_hf.data import load_prepared
from genrec_hf.data.hub_files import AMAZON_REVIEWS_2023

ROOT = Path(__file__).resolve().parents[1]
BEAUTY = ROOT.parent / "shared" / "data" / "amazon2023_all_beauty"
pytestmark = pytest.mark.skipif(not BEAUTY.is_dir(), reason=f"real data folder {BEAUTY} is absent (fresh clone)")
OFFICIAL_5CORE = (253, 356, 2535)  # users, items, interactions of the official All_Beauty 5-core


def hub_files() -> dict[str, bytes]:
    files = {
        "raw/review_categories/All_Beauty.jsonl": gzip.decompress((BEAUTY / "raw/All_Beauty.jsonl.gz").read_bytes()),
        "raw/meta_categories/meta_All_Beauty.jsonl": gzip.decompress(
            (BEAUTY / "raw/meta_All_Beauty.jsonl.gz").read_bytes()
        ),
        "benchmark/5core/rating_only/All_Beauty.csv": gzip.decompress(
            (BEAUTY / "All_Beauty.5core.rating_only.csv.gz").read_bytes()
        ),
    }
    for split in ("train", "valid", "test"):
        data = (BEAUTY / f"All_Beauty.5core.last_out_w_his.{split}.csv.gz").read_bytes()
        files[f"benchmark/5core/last_out_w_his/All_Beauty.{split}.csv"] = gzip.decompress(data)
    return files


def run(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def content(folder: Path) -> tuple:
    data = load_prepared(folder)
    rows = {n: sorted(zip(s["user_id"], s["target"], map(tuple, s["history"]))) for n, s in data.splits.items()}
    return rows, data.items["parent_asin"], data.items["title"]


def counts(stats: dict) -> tuple:
    return stats["users"], stats["items"], stats["interactions"]


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    """Runs the downloads against the local Hub, then stops it; returns the folders, the env and the requests."""
    tmp = tmp_path_factory.mktemp("hub")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HOME": str(tmp / "hf_home"), "HF_HUB_OFFLINE": "0"}
    env.pop("HF_HUB_CACHE", None)
    root = f"hf://datasets/{AMAZON_REVIEWS_2023}"
    runs = {
        "categories": ["--categories", "All_Beauty"],
        "official": ["--categories", "All_Beauty", "--official_split"],
        "hf_glob": ["--reviews", f"{root}/benchmark/5core/rating_only/*.csv", "--meta", f"{root}/raw/*/meta_*.jsonl"],
    }
    code = "\n".join(
        ["from genrec_hf.commands.prepare_data import main"]
        + [f"main({[*argv, '--output_dir', str(tmp / name)]!r})" for name, argv in runs.items()]
    )
    with HubServer(AMAZON_REVIEWS_2023, hub_files()) as hub:
        result = run(code, {**env, "HF_ENDPOINT": hub.url})
    assert result.returncode == 0, result.stderr[-3000:]
    return tmp, env, hub.requests, result


def test_categories_download_reproduces_the_official_5core(downloads):
    tmp, _, requests, result = downloads
    stats = json.loads((tmp / "categories" / "stats.json").read_text())
    assert counts(stats) == OFFICIAL_5CORE and stats["name"] == "All_Beauty"
    assert stats["hub_datasets"] == [f"datasets/{AMAZON_REVIEWS_2023}"]
    downloaded = {path for method, path in requests if method == "GET" and "/resolve/" in path}
    prefix = f"/datasets/{AMAZON_REVIEWS_2023}/resolve/main/"
    assert {
        prefix + "raw/review_categories/All_Beauty.jsonl",
        prefix + "raw/meta_categories/meta_All_Beauty.jsonl",
    } <= downloaded
    assert "users 253, items 356, interactions 2,535" in result.stdout


def test_official_split_and_hf_globs_give_the_same_data(downloads):
    tmp = downloads[0]
    reference = content(tmp / "categories")
    assert content(tmp / "official") == reference and content(tmp / "hf_glob") == reference
    assert json.loads((tmp / "official" / "stats.json").read_text())["kcore"] is None  # taken as published


def test_categories_work_offline_from_the_warm_cache(downloads):
    tmp, env, _, _ = downloads  # the server is stopped by now
    offline = {**env, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    result = subprocess.run(
        [sys.executable, "scripts/prepare_data.py", "--categories", "All_Beauty", "--output_dir", str(tmp / "offline")],
        cwd=ROOT, env=offline, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert counts(json.loads((tmp / "offline" / "stats.json").read_text())) == OFFICIAL_5CORE
    assert content(tmp / "offline") == content(tmp / "categories")

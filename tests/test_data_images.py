"""Image fetch into the content-addressed cache, against a local HTTP server on 127.0.0.1 only."""

import functools
import http.server
import threading

import pytest
from test_data_validation import meta, review, write_gz

from genrec_hf.data import fetch_images, prepare_dataset
from genrec_hf.data.images import cache_path
from genrec_hf.data.items import image_url


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "small.jpg").write_bytes(b"\xff\xd8small image\xff\xd9")
    (root / "big.png").write_bytes(b"x" * 5000)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_is_content_addressed_capped_and_resumable(server, tmp_path):
    cache = tmp_path / "cache"
    urls = [f"{server}/small.jpg", f"{server}/missing.jpg", f"{server}/big.png", None]
    first = fetch_images(urls, cache, timeout=5, max_bytes=1000, retries=1, workers=2)
    assert (first.requested, first.cached, first.downloaded, first.failed) == (3, 0, 1, 2)
    assert "HTTP Error 404" in first.failures[f"{server}/missing.jpg"]
    assert "max_bytes" in first.failures[f"{server}/big.png"]
    cached = cache_path(f"{server}/small.jpg", cache)
    assert cached.suffix == ".jpg" and len(cached.stem) == 64 and cached.read_bytes().startswith(b"\xff\xd8")
    assert sorted(p.name for p in cache.iterdir()) == [cached.name]  # no partial files left behind
    second = fetch_images(urls, cache, timeout=5, max_bytes=1000, retries=0)
    assert (second.cached, second.downloaded, second.failed) == (1, 0, 2)


def test_prepared_items_point_into_the_cache(server, tmp_path):
    reviews = write_gz(tmp_path / "Toys.jsonl.gz", [review("u1", "A", 1), review("u1", "B", 2)])
    metas = write_gz(tmp_path / "meta_Toys.jsonl.gz", [
        meta("A", images=[{"thumb": None, "large": f"{server}/small.jpg", "hi_res": None}]),
        meta("B", images=[{"thumb": f"{server}/missing.jpg", "large": None, "hi_res": None}]),
    ])  # fmt: skip
    cache = tmp_path / "cache"
    before = prepare_dataset(reviews, metas, kcore=0, image_cache_dir=cache)
    assert before.items["image_path"] == [None, None]
    report = fetch_images(before.items, cache, retries=0)
    assert (report.downloaded, report.failed) == (1, 1)
    after = prepare_dataset(reviews, metas, kcore=0, image_cache_dir=cache)
    assert after.items["image_path"] == [str(cache_path(f"{server}/small.jpg", cache).resolve()), None]


def test_image_url_prefers_hi_res_then_large_then_thumb():
    assert image_url([{"thumb": "t", "large": "l", "hi_res": "h"}]) == "h"
    assert image_url([{"thumb": "t", "large": "l", "hi_res": None}, {"hi_res": "h2"}]) == "l"
    assert image_url([{"thumb": None, "large": None, "hi_res": None}, {"thumb": "t2"}]) == "t2"
    assert image_url([]) is None and image_url(None) is None

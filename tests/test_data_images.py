"""Image fetch into the content-addressed cache, against a local HTTP server on 127.0.0.1 only."""

import functools
import http.server
import threading
import time

import pytest
from PIL import Image
from test_data_validation import meta, review, write_gz

from genrec_hf.data import fetch_images, prepare_dataset
from genrec_hf.data.images import cache_path
from genrec_hf.data.items import image_url


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    Image.new("RGB", (8, 8), "red").save(root / "small.jpg")
    (root / "big.png").write_bytes(b"x" * 5000)
    (root / "error.jpg").write_bytes(b"<html>404 - this is not an image</html>")
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
    first = fetch_images(urls, cache, timeout=5, max_bytes=1000, retries=1, workers=2, allow_private_hosts=True)
    assert (first.requested, first.cached, first.downloaded, first.failed) == (3, 0, 1, 2)
    assert "HTTP Error 404" in first.failures[f"{server}/missing.jpg"]
    assert "max_bytes" in first.failures[f"{server}/big.png"]
    cached = cache_path(f"{server}/small.jpg", cache)
    assert cached.suffix == ".jpg" and len(cached.stem) == 64 and cached.read_bytes().startswith(b"\xff\xd8")
    assert sorted(p.name for p in cache.iterdir()) == [cached.name]  # no partial files left behind
    second = fetch_images(urls, cache, timeout=5, max_bytes=1000, retries=0, allow_private_hosts=True)
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
    report = fetch_images(before.items, cache, retries=0, allow_private_hosts=True)
    assert (report.downloaded, report.failed) == (1, 1)
    after = prepare_dataset(reviews, metas, kcore=0, image_cache_dir=cache)
    assert after.items["image_path"] == [str(cache_path(f"{server}/small.jpg", cache).resolve()), None]


def test_image_url_prefers_hi_res_then_large_then_thumb():
    assert image_url([{"thumb": "t", "large": "l", "hi_res": "h"}]) == "h"
    assert image_url([{"thumb": "t", "large": "l", "hi_res": None}, {"hi_res": "h2"}]) == "l"
    assert image_url([{"thumb": None, "large": None, "hi_res": None}, {"thumb": "t2"}]) == "t2"
    assert image_url([]) is None and image_url(None) is None


# ----------------------------------------------------------------------------------------------------------------
# A metadata file is not trusted: what its image URLs may make the fetch do (issue 16, finding 2)
# ----------------------------------------------------------------------------------------------------------------
class DripHandler(http.server.BaseHTTPRequestHandler):
    """Answers 200 and then one byte every 0.5 s: each read beats a per-read timeout, the whole never ends."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def test_only_http_urls_of_public_hosts_are_fetched(server, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    cache = tmp_path / "cache"
    report = fetch_images([secret.as_uri(), f"ftp://127.0.0.1/{secret.name}", f"{server}/small.jpg"], cache)
    assert (report.downloaded, report.failed) == (0, 3)
    assert "scheme 'file' refused" in report.failures[secret.as_uri()]
    assert "non-public address 127.0.0.1" in report.failures[f"{server}/small.jpg"]
    assert not cache.exists() or not any(cache.iterdir())


def test_a_redirect_cannot_lead_the_fetch_off_http(tmp_path):
    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/etc/passwd")  # urllib itself follows ftp redirects
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/photo.jpg"
        report = fetch_images([url], tmp_path / "cache", retries=0, allow_private_hosts=True)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert report.failed == 1 and "scheme 'ftp' refused" in report.failures[url]


def test_a_slow_server_cannot_hold_a_fetch_past_its_deadline(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DripHandler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/slow.jpg"
    start = time.monotonic()
    try:
        report = fetch_images([url], tmp_path / "cache", timeout=2, retries=0, allow_private_hosts=True)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert report.failed == 1 and "within timeout=2" in report.failures[url]
    assert time.monotonic() - start < 5  # the per-read timeout alone would have let it run for 500 s


def test_bytes_that_are_not_an_image_are_not_cached(server, tmp_path):
    cache = tmp_path / "cache"
    report = fetch_images([f"{server}/error.jpg"], cache, retries=0, allow_private_hosts=True)
    assert report.failed == 1 and "not a usable image" in report.failures[f"{server}/error.jpg"]
    assert not any(cache.iterdir())

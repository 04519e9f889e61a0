"""A separate, resumable image fetch into a content-addressed cache, so training never touches the network."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError
from urllib.parse import urlparse

from datasets.utils.tqdm import tqdm

logger = logging.getLogger(__name__)

CACHED_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")
MAX_FAILURES_SHOWN = 20


def cache_path(url: str, cache_dir: str | Path) -> Path:
    """Where `url` is cached: `<cache_dir>/<sha256(url)><suffix>` (suffix kept from the URL when it is an image's)."""
    suffix = PurePosixPath(urlparse(url).path).suffix.lower()
    return Path(cache_dir) / (hashlib.sha256(url.encode()).hexdigest() + (suffix if suffix in CACHED_SUFFIXES else ""))


@dataclass
class FetchReport:
    """Outcome of a fetch: counts per outcome and the first failures (`url -> error`)."""

    requested: int = 0
    cached: int = 0
    downloaded: int = 0
    failed: int = 0
    failures: dict[str, str] = field(default_factory=dict)


def _download(url: str, target: Path, timeout: float, max_bytes: int, retries: int) -> None:
    """Downloads `url` to `target` atomically (a partial file never looks cached); retries transient errors
    (network, HTTP 5xx) with backoff, not permanent ones (HTTP 4xx, oversize, empty)."""
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise ValueError(f"larger than max_bytes={max_bytes}")
            if not data:
                raise ValueError("empty response")
            handle, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
            return
        except (ValueError, OSError) as error:  # OSError: URLError, HTTPError, timeouts
            permanent = isinstance(error, ValueError) or (isinstance(error, HTTPError) and error.code < 500)
            if permanent or attempt == retries:
                raise
            time.sleep(0.5 * 2**attempt)


def fetch_images(
    items: Iterable[str | None] | Iterable[dict],
    cache_dir: str | Path,
    timeout: float = 10,
    max_bytes: int = 10 * 2**20,
    retries: int = 2,
    workers: int = 8,
) -> FetchReport:
    """Fetches image URLs into `cache_dir`, skipping those already cached, so an interrupted fetch resumes.

    `items` is an item table (a `datasets.Dataset`, or rows with `image_url`) or plain URLs; empty URLs are
    ignored. A failure (timeout, HTTP error, oversize) is counted and never stops the other downloads.
    """
    urls = sorted({u for u in (row["image_url"] if isinstance(row, dict) else row for row in items) if u})
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    report = FetchReport(requested=len(urls))
    missing = [u for u in urls if not cache_path(u, cache_dir).exists()]
    report.cached = len(urls) - len(missing)

    def fetch(url: str) -> tuple[str, Exception | None]:
        try:
            _download(url, cache_path(url, cache_dir), timeout, max_bytes, retries)
            return url, None
        except Exception as error:  # noqa: BLE001 - every failure is counted, none stops the others
            return url, error

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for url, error in tqdm(pool.map(fetch, missing), total=len(missing), desc="fetching images"):
            if error is None:
                report.downloaded += 1
                continue
            report.failed += 1
            if len(report.failures) < MAX_FAILURES_SHOWN:
                report.failures[url] = f"{type(error).__name__}: {error}"
    logger.info(
        "images: %d requested, %d already cached, %d downloaded, %d failed",
        report.requested, report.cached, report.downloaded, report.failed,
    )  # fmt: skip
    return report

"""A separate, resumable image fetch into a content-addressed cache, so training never touches the network."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import logging
import os
import socket
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

from ..item_content import open_image_safely

logger = logging.getLogger(__name__)

CACHED_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")
MAX_FAILURES_SHOWN = 20
ALLOWED_SCHEMES = ("http", "https")
READ_SIZE = 1 << 16


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


def check_url(url: str, allow_private_hosts: bool = False) -> None:
    """Raises `ValueError` unless `url` is http(s) to a host on the public internet (`allow_private_hosts` also
    admits loopback and private networks): a metadata file must not make the fetch read local files or internal
    services."""
    parts = urlparse(url)
    if parts.scheme not in ALLOWED_SCHEMES:
        raise ValueError(
            f"scheme {parts.scheme or '(none)'!r} refused: only {' and '.join(ALLOWED_SCHEMES)} are fetched"
        )
    if not parts.hostname:
        raise ValueError("the URL names no host")
    if allow_private_hosts:
        return
    for *_, address in socket.getaddrinfo(parts.hostname, parts.port or None, proto=socket.IPPROTO_TCP):
        ip = ipaddress.ip_address(address[0].split("%")[0])
        if not ip.is_global:
            raise ValueError(f"host {parts.hostname} is at the non-public address {ip}: refused")


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL that `check_url` admits."""

    def __init__(self, allow_private_hosts: bool):
        self.allow_private_hosts = allow_private_hosts

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl, self.allow_private_hosts)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _read_within(response, max_bytes: int, deadline: float, timeout: float) -> bytes:
    """The body, read piece by piece until `deadline` (a server sending a byte now and then cannot hold the fetch)."""
    parts, size = [], 0
    while chunk := response.read1(READ_SIZE):
        size += len(chunk)
        if size > max_bytes:
            raise ValueError(f"larger than max_bytes={max_bytes}")
        if time.monotonic() > deadline:
            raise ValueError(f"not downloaded within timeout={timeout} s")
        parts.append(chunk)
    return b"".join(parts)


def _check_image(data: bytes) -> None:
    """Raises `ValueError` unless `data` is an image that decodes safely (not an error page, not a bomb)."""
    if not data:
        raise ValueError("empty response")
    try:
        with open_image_safely(io.BytesIO(data)) as image:
            image.verify()
    except (OSError, SyntaxError, ValueError) as error:  # UnidentifiedImageError is an OSError
        raise ValueError(f"not a usable image ({error})") from None


def _download(
    url: str, target: Path, timeout: float, max_bytes: int, retries: int, allow_private_hosts: bool = False
) -> None:
    """Downloads `url` to `target` atomically (a partial file never looks cached) once the bytes prove to be an
    image; retries transient errors (network, HTTP 5xx) with backoff, not permanent ones (a refused URL, HTTP 4xx,
    oversize, too slow, not an image)."""
    opener = urllib.request.build_opener(_CheckedRedirects(allow_private_hosts))
    for attempt in range(retries + 1):
        try:
            check_url(url, allow_private_hosts)
            deadline = time.monotonic() + timeout
            with opener.open(url, timeout=timeout) as response:
                data = _read_within(response, max_bytes, deadline, timeout)
            _check_image(data)
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
    allow_private_hosts: bool = False,
) -> FetchReport:
    """Fetches image URLs into `cache_dir`, skipping those already cached, so an interrupted fetch resumes.

    `items` is an item table (a `datasets.Dataset`, or rows with `image_url`) or plain URLs; empty URLs are
    ignored. Only http(s) URLs of public hosts are fetched (`allow_private_hosts` admits local and private
    networks), each within `timeout` seconds in all and `max_bytes`, and kept only when the bytes decode safely as
    an image. A failure (refused URL, timeout, HTTP error, oversize, not an image) is counted and never stops the
    other downloads.
    """
    urls = sorted({u for u in (row["image_url"] if isinstance(row, dict) else row for row in items) if u})
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    report = FetchReport(requested=len(urls))
    missing = [u for u in urls if not cache_path(u, cache_dir).exists()]
    report.cached = len(urls) - len(missing)

    def fetch(url: str) -> tuple[str, Exception | None]:
        try:
            _download(url, cache_path(url, cache_dir), timeout, max_bytes, retries, allow_private_hosts)
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

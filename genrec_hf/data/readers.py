"""Streaming readers for Amazon Reviews 2023 files: raw `*.jsonl(.gz)` reviews and metadata, interaction CSVs
(`user_id,parent_asin,rating,timestamp`, e.g. the official `rating_only` files) and the official benchmark splits
with history, named either as published on the Hub (`last_out_w_his/<Category>.train.csv`, the protocol given by
the folder) or with the protocol in the file name (`<Category>.last_out_w_his.train.csv.gz`). Every file may be
plain or gzipped; `hf://` paths are downloaded through `huggingface_hub` first (`hub_files.py`).

Readers yield one validated record at a time and never hold a file in memory; rejected lines go to the
`ValidationReport`. Review records are cut down to the four interaction columns (no review text is kept).
"""

from __future__ import annotations

import csv
import glob
import gzip
import json
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from datasets.utils.tqdm import tqdm

from .hub_files import download_hub_path, is_hub_path
from .validation import (
    MALFORMED,
    META_OPTIONAL,
    META_SCHEMA,
    MISSING,
    OUT_OF_RANGE,
    REVIEW_SCHEMA,
    WRONG_TYPE,
    ValidationReport,
    check_record,
    in_range,
)

SPLIT_FILE = re.compile(r"\.(last_out|timestamp)_w_his\.(train|valid|test)\.csv(\.gz)?$")
SPLIT_FILE_IN_FOLDER = re.compile(r"\.(train|valid|test)\.csv(\.gz)?$")  # inside a `<protocol>_w_his/` folder
CSV_FILE = re.compile(r"\.csv(\.gz)?$")
FILE_PROTOCOLS = {"last_out": "leave_one_out", "timestamp": "timestamp"}
REVIEWS, METADATA = "reviews", "metadata"
REVIEW_MARKERS = ("user_id", "timestamp")  # every review has them, no metadata record does
META_MARKERS = ("main_category", "average_rating", "rating_number", "store", "details")


@dataclass(frozen=True)
class Interaction:
    """One review reduced to what a sequence model may see."""

    user_id: str
    parent_asin: str
    rating: float
    timestamp: int
    path: str
    line: int


def expand_paths(patterns: str | Path | Sequence[str | Path] | None) -> list[str]:
    """Local paths of files and globs, in the given order (each glob sorted); `hf://` paths and globs are
    downloaded (cached) first. A pattern that matches nothing is an error."""
    if patterns is None:
        return []
    paths = []
    for pattern in [patterns] if isinstance(patterns, (str, Path)) else patterns:
        if is_hub_path(pattern):
            paths += download_hub_path(str(pattern))
            continue
        matches = sorted(glob.glob(str(pattern))) if glob.has_magic(str(pattern)) else [str(pattern)]
        if not matches or not Path(matches[0]).exists():
            raise FileNotFoundError(f"no file matches {pattern!r}")
        paths += matches
    return paths


def category_of(path: str | Path) -> str:
    """The source category named by a file: `meta_Handmade_Products.jsonl.gz` -> `Handmade_Products`."""
    name = Path(path).name
    return name.removeprefix("meta_").split(".")[0]


def split_file_protocol(path: str | Path) -> tuple[str, str] | None:
    """`(protocol, split)` for an official split CSV with history, else `None`: `X.last_out_w_his.train.csv(.gz)`,
    or `X.train.csv(.gz)` inside a `last_out_w_his/` or `timestamp_w_his/` folder (the Hub's layout)."""
    path = Path(path)
    match = SPLIT_FILE.search(path.name)
    if match:
        return FILE_PROTOCOLS[match.group(1)], match.group(2)
    folder = path.parent.name.removesuffix("_w_his")
    match = SPLIT_FILE_IN_FOLDER.search(path.name)
    if match and path.parent.name.endswith("_w_his") and folder in FILE_PROTOCOLS:
        return FILE_PROTOCOLS[folder], match.group(1)
    return None


def _iter_lines(path: str, report: ValidationReport) -> Iterator[tuple[int, bytes]]:
    """`(line_number, raw_line)` from a plain or gzipped file, with a progress bar over the bytes read from disk.

    A file that ends early or is corrupt (e.g. a truncated gzip) stops the file with an error in the report;
    the lines read before it stay counted and kept.
    """
    file_report = report.file(path)
    line_number = 0
    size = Path(path).stat().st_size
    with open(path, "rb") as raw, tqdm(total=size, unit="B", unit_scale=True, desc=Path(path).name) as progress:
        stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
        try:
            for line_number, line in enumerate(stream, start=1):
                file_report.lines = line_number
                if line_number % 4096 == 0:
                    progress.update(raw.tell() - progress.n)
                if line.strip():
                    yield line_number, line
        except (EOFError, OSError, zlib.error) as error:
            report.file_failed(path, line_number, error)
        progress.update(size - progress.n)


def record_kind(record: dict) -> str | None:
    """`"reviews"` or `"metadata"` when a raw record's fields say which file it comes from, else `None`."""
    if all(name in record for name in REVIEW_MARKERS):
        return REVIEWS
    if "user_id" not in record and any(name in record for name in META_MARKERS):
        return METADATA
    return None


def _check_file_kind(path: str, line: int, record, expected: str) -> None:
    """Raises `ValueError` when the first record of a file given as `expected` (reviews or metadata) is the other
    kind: a glob that also matches the review file, or swapped `--reviews` / `--meta`, must not pass as data."""
    kind = record_kind(record) if isinstance(record, dict) else None
    if kind is not None and kind != expected:
        fields = REVIEW_MARKERS if kind == REVIEWS else [n for n in META_MARKERS if n in record]
        option = "--meta" if expected == METADATA else "--reviews"
        raise ValueError(
            f"{path}:{line}: this file holds {kind} (its records have {', '.join(fields)}), not {expected}: "
            f"check the files given as {option} (a glob that matches both files, or --reviews and --meta swapped?)"
        )


def iter_json_records(
    path: str,
    report: ValidationReport,
    required: dict[str, str],
    optional: dict[str, str] | None = None,
    expected: str | None = None,
) -> Iterator[tuple[int, dict]]:
    """Parsed JSON lines that fit the schema; every other line is counted in the report. With `expected`
    (`"reviews"` or `"metadata"`), a file whose first record is the other kind raises `ValueError`."""
    file_report = report.file(path)
    checked = expected is None
    for line_number, line in _iter_lines(path, report):
        try:
            record = json.loads(line)
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
            report.reject(path, line_number, MALFORMED, "<line>", str(error))
            continue
        if not checked:
            _check_file_kind(path, line_number, record, expected)
            checked = True
        problem = check_record(record, required, optional)
        if problem:
            kind, name = problem
            value = record.get(name) if isinstance(record, dict) else record
            report.reject(path, line_number, kind, name, f"got {type(value).__name__} {str(value)[:40]!r}")
            continue
        file_report.valid += 1
        yield line_number, record


def _iter_csv_rows(path: str, report: ValidationReport, columns: Sequence[str]) -> Iterator[tuple[int, dict]]:
    """CSV rows as dicts, after checking the header names every required column (header is line 1)."""
    header = None
    for line_number, line in _iter_lines(path, report):
        try:
            values = next(csv.reader([line.decode("utf-8")]))
        except (UnicodeDecodeError, csv.Error) as error:
            report.reject(path, line_number, MALFORMED, "<line>", str(error))
            continue
        if header is None:
            header = values
            missing = [c for c in columns if c not in header]
            if missing:
                report.reject(path, line_number, MISSING, ",".join(missing), "CSV header lacks required columns")
                return
            continue
        if len(values) != len(header):
            report.reject(path, line_number, MALFORMED, "<line>", f"{len(values)} fields, header has {len(header)}")
            continue
        yield line_number, dict(zip(header, values))


def _parse_csv_interaction(row: dict, path: str, line: int, report: ValidationReport) -> Interaction | None:
    """An interaction from CSV text: ids non-empty, rating a decimal number, timestamp digits only, both in range."""
    for name in REVIEW_SCHEMA:
        if not row[name]:
            report.reject(path, line, MISSING, name)
            return None
    try:
        rating = float(row["rating"])
    except ValueError:
        report.reject(path, line, WRONG_TYPE, "rating", f"got {row['rating'][:40]!r}")
        return None
    if not row["timestamp"].isdigit():
        report.reject(path, line, WRONG_TYPE, "timestamp", f"got {row['timestamp'][:40]!r}")
        return None
    timestamp = int(row["timestamp"])
    for name, value in (("rating", rating), ("timestamp", timestamp)):
        if not in_range(name, value):
            report.reject(path, line, OUT_OF_RANGE, name, f"got {row[name][:40]!r}")
            return None
    return Interaction(row["user_id"], row["parent_asin"], rating, timestamp, path, line)


def iter_interactions(paths: Sequence[str], report: ValidationReport) -> Iterator[Interaction]:
    """Interactions from raw review JSON lines or interaction CSVs (`*.csv(.gz)`, e.g. `rating_only`), in file
    order."""
    for path in paths:
        if CSV_FILE.search(Path(path).name):
            for line, row in _iter_csv_rows(path, report, list(REVIEW_SCHEMA)):
                interaction = _parse_csv_interaction(row, path, line, report)
                if interaction:
                    report.file(path).valid += 1
                    yield interaction
        else:
            for line, r in iter_json_records(path, report, REVIEW_SCHEMA, expected=REVIEWS):
                yield Interaction(r["user_id"], r["parent_asin"], float(r["rating"]), r["timestamp"], path, line)


def iter_split_rows(path: str, report: ValidationReport) -> Iterator[tuple[Interaction, list[str]]]:
    """`(interaction, history)` for each row of an official `*_w_his.{train,valid,test}.csv(.gz)` file."""
    for line, row in _iter_csv_rows(path, report, [*REVIEW_SCHEMA, "history"]):
        interaction = _parse_csv_interaction(row, path, line, report)
        if interaction:
            report.file(path).valid += 1
            yield interaction, row["history"].split()


def iter_meta(paths: Sequence[str], report: ValidationReport) -> Iterator[tuple[str, dict]]:
    """`(category, record)` for every valid metadata line, in file order."""
    for path in paths:
        category = category_of(path)
        for _, record in iter_json_records(path, report, META_SCHEMA, META_OPTIONAL, expected=METADATA):
            yield category, record

"""Writes that a kill cannot leave half done: a file is written beside its target and renamed over it, and a set of
files (a model folder) is staged, marked complete, then moved into place, a move that the next reader finishes."""

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STAGING_DIR = ".genrec_staging"
COMPLETE = "COMPLETE"


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` for a writer to fill; when the block ends without error it replaces `path` in
    one rename, so readers see the old file or the whole new one, never a part. On error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name the writer creates (with the usual permissions, unlike mkstemp's owner-only file).
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield temporary
        _fsync(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes `text` (UTF-8) to `path` through `atomic_path`."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def staging_folder(folder: str | os.PathLike) -> Path:
    """An empty folder inside `folder` to write a set of files into before `commit_staged` moves them into `folder`
    (a left-over staging of an interrupted save is finished or discarded first)."""
    folder = Path(folder)
    finish_staged(folder)
    staging = folder / STAGING_DIR
    staging.mkdir(parents=True)
    return staging


def commit_staged(folder: str | os.PathLike) -> None:
    """Marks the staged files of `folder` complete, then moves each over its namesake in `folder`."""
    staging = Path(folder) / STAGING_DIR
    for path in staging.iterdir():
        _fsync(path)
    atomic_write_text(staging / COMPLETE, "")
    finish_staged(folder)


def finish_staged(folder: str | os.PathLike) -> bool:
    """Finishes a commit that a kill interrupted (the staging is complete: its files are moved into `folder`) or
    discards a staging that was never completed; returns whether files were moved."""
    staging = Path(folder) / STAGING_DIR
    if not staging.is_dir():
        return False
    complete = (staging / COMPLETE).exists()
    if complete:
        for path in sorted(staging.iterdir()):
            if path.name != COMPLETE:
                os.replace(path, Path(folder) / path.name)
    shutil.rmtree(staging)
    return complete


__all__ = ["atomic_path", "atomic_write_text", "commit_staged", "finish_staged", "staging_folder"]

"""The catalog's content features in one file beside the model, `item_features.safetensors`: written once, mapped
on load.

The file is a safetensors file (an 8-byte header length, a JSON header, then the raw little-endian bytes) holding
`text_features` and `image_features` `(num_items + 1, dim)` in float16 and `image_mask` `(num_items + 1,)`, row 0 being
padding. It is written deterministically (tensors ordered by element size then name, a compact header padded to 8
bytes), so its SHA-256, which the model's config.json records, is a function of the tensors alone: a file that already
holds the same bytes is never written again, and a copy this process knows of is hard-linked rather than rewritten. It
is memory-mapped on load (`torch.from_file`): rows are read from disk when they are gathered, and nothing is unpickled.

Shipped with the model as remote code: imports only the standard library and torch (transformers 5.4 copies only the
direct sibling imports of the model's file into a local folder's module cache, so the model's file does the atomic
rename).
"""

import hashlib
import json
import math
import os
import struct
from collections.abc import Iterator, Mapping

import torch

ITEM_FEATURES_FILE = "item_features.safetensors"
FEATURE_DTYPE = torch.float16  # the storage precision; the model upcasts the rows it gathers
_SAFETENSORS_DTYPES = {torch.float16: "F16", torch.bool: "BOOL"}
_MAX_HEADER_BYTES = 1 << 20  # three tensors need a few hundred bytes

# Files this process has hashed or written: real path -> ((device, inode, size, mtime_ns), sha256).
_known_files: dict[str, tuple[tuple[int, int, int, int], str]] = {}


def _stat_key(path: str | os.PathLike) -> tuple[int, int, int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _file_parts(tensors: Mapping[str, torch.Tensor]) -> Iterator[bytes | memoryview]:
    """The bytes of the features file of `tensors`, in order: header length, header, then each tensor's data."""
    names = sorted(tensors, key=lambda name: (-tensors[name].element_size(), name))  # keeps every tensor aligned
    data = [tensors[name].detach().cpu().contiguous() for name in names]
    header, offset = {}, 0
    for name, tensor in zip(names, data):
        end = offset + tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    yield struct.pack("<Q", len(text)) + text
    for tensor in data:
        yield memoryview(tensor.view(torch.uint8).reshape(-1).numpy())


def features_sha256(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of the features file of `tensors` (the bytes `write_features` writes), computed without writing it."""
    digest = hashlib.sha256()
    for part in _file_parts(tensors):
        digest.update(part)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read once per version of the file (inode, size and modification time) in this process."""
    known = _known_files.get(os.path.realpath(path))
    if known is not None and known[0] == _stat_key(path):
        return known[1]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    remember(path, digest.hexdigest())
    return digest.hexdigest()


def holds(path: str | os.PathLike, digest: str) -> bool:
    """Whether `path` is a file whose SHA-256 is `digest`."""
    return os.path.isfile(path) and file_sha256(path) == digest


def write_features(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], digest: str) -> None:
    """Creates the features file of `tensors` (SHA-256 `digest`) at the new path `path`: a hard link to a file this
    process knows to hold those bytes (unchanged since), else the bytes themselves. Callers write to a temporary path
    and rename it over the target, so a model that maps the old file keeps reading it whole."""
    for source, (key, known_digest) in list(_known_files.items()):
        try:
            if known_digest == digest and _stat_key(source) == key:
                os.link(source, path)
                return
        except OSError:  # gone, another file system, or no hard links there
            continue
    with open(path, "wb") as handle:
        for part in _file_parts(tensors):
            handle.write(part)


def remember(path: str | os.PathLike, digest: str) -> None:
    """Records that the file at `path`, as it is now, holds `digest` (so it is neither hashed nor written again)."""
    _known_files[os.path.realpath(path)] = (_stat_key(path), digest)


def _read_header(path: str | os.PathLike, size: int) -> tuple[int, dict[str, tuple[str, tuple, tuple[int, int]]]]:
    """Where the data of a safetensors file starts, and `name -> (dtype, shape, data_offsets)` from its header."""
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        length = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else -1
        if not 0 < length <= min(_MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"{path} is not a safetensors file (no readable header)")
        try:
            header = json.loads(handle.read(length))
            header.pop("__metadata__", None)
            entries = {}
            for name, entry in header.items():
                begin, end = entry["data_offsets"]
                if not isinstance(begin, int) or not isinstance(end, int):
                    raise TypeError(f"data offsets {begin!r}, {end!r}")
                entries[name] = (entry["dtype"], tuple(entry["shape"]), (begin, end))
        except (UnicodeDecodeError, ValueError, AttributeError, KeyError, TypeError):
            raise ValueError(f"{path} is not a safetensors file (unreadable header)") from None
    return 8 + length, entries


def map_features(
    path: str | os.PathLike, expected: Mapping[str, tuple[torch.dtype, tuple[int, ...]]], sha256: str
) -> dict[str, torch.Tensor]:
    """The tensors of the features file at `path`, memory-mapped (copy-on-write: the file itself never changes).

    `expected` maps each tensor name to the dtype and shape the model's config implies. A file whose header does not
    describe exactly `expected`, or whose SHA-256 is not `sha256`, raises a `ValueError` naming the file.
    """
    size = os.path.getsize(path)
    start, entries = _read_header(path, size)
    found = {name: (dtype, shape) for name, (dtype, shape, _) in entries.items()}
    wanted = {name: (_SAFETENSORS_DTYPES[dtype], tuple(shape)) for name, (dtype, shape) in expected.items()}
    if found != wanted:
        raise ValueError(
            f"{path} holds {found} but the model's config expects {wanted} (from num_items, text_feature_dim and "
            "image_feature_dim in config.json)"
        )
    actual = file_sha256(path)
    if actual != sha256:
        raise ValueError(
            f"{path} is not the features file this model was saved with: its SHA-256 is {actual}, config.json records "
            f"item_features_sha256={sha256} (the file was replaced, e.g. by a later run in the same folder, or damaged)"
        )
    data = torch.from_file(os.fspath(path), shared=False, size=size, dtype=torch.uint8)
    tensors = {}
    for name, (dtype, shape) in expected.items():
        begin, end = (start + offset for offset in entries[name][2])
        if end - begin != math.prod(shape) * dtype.itemsize or not start <= begin <= end <= size:
            raise ValueError(f"{path}: the data offsets of {name} do not match its shape or lie outside the file")
        raw = data[begin:end] if begin % dtype.itemsize == 0 else data[begin:end].clone()  # view needs alignment
        tensors[name] = raw.view(dtype).view(shape)
    return tensors


__all__ = [
    "FEATURE_DTYPE",
    "ITEM_FEATURES_FILE",
    "features_sha256",
    "file_sha256",
    "holds",
    "map_features",
    "remember",
    "write_features",
]

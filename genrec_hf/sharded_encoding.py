"""Encoding items in chunks, one file per chunk, shared out to the processes of `accelerate launch` / `torchrun`.

`encode_chunks` is the one code path of the training-time feature cache (`feature_cache.cached_item_features`) and
of the catalog build (`inference.build.build_catalog`). The chunks missing from the work folder are dealt out to the
processes in turn (all of them to a lone process); each process encodes its own chunks with its own encoder on its
own device and writes every chunk as it finishes; after a barrier, the main process reads all chunks in catalog order.
A run that was killed, or stopped by `max_chunks`, encodes only the missing chunks when it is run again.

Several processes exchange the chunks through the work folder, so it must be one that every process sees (one
machine, or a filesystem shared by the machines); with one process, no folder is needed.
"""

import json
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ._atomic import atomic_path, atomic_write_text
from ._distributed import process_state
from .encoders import ItemFeatures

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def save_features(features: ItemFeatures, path: str | Path) -> None:
    """Writes `features` as safetensors at `path`, whole or not at all (`atomic_path`)."""
    with atomic_path(path) as partial:
        save_file({name: values.contiguous() for name, values in features.as_dict().items()}, partial)


def load_features(path: str | Path) -> ItemFeatures:
    return ItemFeatures(**load_file(path))


def concat_features(parts: Sequence[ItemFeatures]) -> ItemFeatures:
    """The rows of `parts`, in order, as one `ItemFeatures`."""
    names = ("text_features", "image_features", "image_mask")
    return ItemFeatures(*(torch.cat([getattr(part, name) for part in parts]) for name in names))


def chunk_file(work: Path, number: int) -> Path:
    return work / f"chunk-{number:06d}.safetensors"


@dataclass
class EncodedChunks:
    """What `encode_chunks` did. `features` holds every chunk's rows in order on the main process once all chunks are
    encoded (`None` on the other processes, while chunks are missing, or when there were no chunks)."""

    features: ItemFeatures | None
    chunks_done: int
    chunks_total: int

    @property
    def complete(self) -> bool:
        return self.chunks_done == self.chunks_total


def encode_chunks(
    chunks: Sequence[Sequence[int]],
    encode: Callable[[Sequence[int]], ItemFeatures],
    work: Path | None,
    manifest: Mapping[str, Any] | None = None,
    max_chunks: int | None = None,
    show_progress: bool = True,
) -> EncodedChunks:
    """Encodes the `chunks` (lists of item positions) with `encode`, shared out to the processes of the launch.

    Call it on every process. With a `work` folder, each chunk is saved there as `chunk-NNNNNN.safetensors` when it
    is encoded and read back instead of encoded on a later run; `manifest` (with the chunk sizes added) describes the
    build, and a folder left by a build with another manifest is emptied first. `max_chunks` bounds the chunks that
    this run encodes, over all processes.
    """
    state = process_state()
    if work is None and state.num_processes > 1:
        raise ValueError(
            f"encoding items across {state.num_processes} processes exchanges the chunks through a folder that every "
            "process sees: give the output (or cache) folder"
        )
    if work is not None:
        _prepare_work_folder(work, {**(manifest or {}), "chunk_sizes": [len(chunk) for chunk in chunks]}, state)
    missing = [n for n in range(len(chunks)) if work is None or not chunk_file(work, n).exists()]
    state.wait_for_everyone()  # every process listed the same missing chunks before any is written
    if len(missing) < len(chunks) and state.is_main_process:
        logger.info("resuming: %d of %d chunks already encoded in %s", len(chunks) - len(missing), len(chunks), work)
    to_encode = missing if max_chunks is None else missing[:max_chunks]
    mine = to_encode[state.process_index :: state.num_processes]
    if state.num_processes > 1 and mine:
        share = (state.process_index, state.num_processes, len(mine), len(to_encode))
        logger.info("process %d of %d encodes %d of %d chunks", *share)
    encoded = {}
    total = sum(len(chunks[n]) for n in mine)
    show = show_progress and bool(total) and state.is_local_main_process
    with tqdm(total=total, desc="Encoding items", unit="item", disable=not show) as progress:
        for number in mine:
            features = encode(chunks[number])
            if work is None:
                encoded[number] = features
            else:
                save_features(features, chunk_file(work, number))
            progress.update(len(chunks[number]))
    state.wait_for_everyone()  # every chunk of this run is written
    done = len(chunks) - len(missing) + len(to_encode)
    if done < len(chunks) or not state.is_main_process or not chunks:
        return EncodedChunks(None, done, len(chunks))
    parts = [encoded[n] if n in encoded else load_features(chunk_file(work, n)) for n in range(len(chunks))]
    return EncodedChunks(concat_features(parts), done, len(chunks))


def _prepare_work_folder(work: Path, manifest: Mapping[str, Any], state: PartialState) -> None:
    """The main process empties a folder left by another build and writes `manifest`; every process then checks that
    it sees the same manifest (a folder not shared between the processes cannot carry their chunks)."""
    path = work / MANIFEST
    if state.is_main_process:
        if path.exists() and json.loads(path.read_text()) != manifest:
            logger.warning("discarding the partial encoding in %s: it was for other items or settings", work)
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(manifest))
    state.wait_for_everyone()
    if not path.exists() or json.loads(path.read_text()) != manifest:
        raise ValueError(
            f"process {state.process_index} does not see the work folder {work} that the main process prepared: "
            "with several machines, put it on a filesystem they share"
        )


__all__ = ["EncodedChunks", "concat_features", "encode_chunks", "load_features", "save_features"]

"""Item content features computed once per (encoder, item table) and cached as safetensors."""

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch
from datasets import Dataset
from safetensors import SafetensorError

from ._distributed import process_state
from .encoders import ItemEncoder, ItemFeatures
from .processing_genrec import GenRecProcessor
from .sharded_encoding import encode_chunks, load_features, save_features

logger = logging.getLogger(__name__)


def features_cache_key(encoder: ItemEncoder, processor: GenRecProcessor, items: Dataset) -> str:
    """Changes whenever the encoder (or its pooling), the text template or the item table changes."""
    description = {
        "encoder": encoder.name_or_path,
        "encoder_type": encoder.encoder_type,
        "pooling": asdict(encoder.pooling) if encoder.encoder_type == "text" else None,
        "text_fields": processor.text_fields,
        "text_max_length": processor.text_max_length,
        "items": items._fingerprint,
        "num_items": len(items),
    }
    if encoder.model.dtype != torch.float32:  # float32 adds nothing, so caches written before the option stay valid
        description["dtype"] = str(encoder.model.dtype)
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]


def cached_item_features(
    encoder: ItemEncoder,
    processor: GenRecProcessor,
    items: Dataset,
    cache_dir: str | Path | None,
    batch_size: int = 64,
    chunk_size: int = 4096,
) -> ItemFeatures:
    """Encodes every item of `items` (in table order) once; later calls with the same inputs read the cache.

    The items are encoded in chunks of `chunk_size`, each saved in `item_features-<key>.chunks/` as it finishes (a run
    killed while encoding resumes at the missing chunks), then joined into `item_features-<key>.safetensors`. Under
    `accelerate launch` or `torchrun`, call it on every process (with the encoder on the process's device): the
    processes share the chunks out (`genrec_hf.sharded_encoding`), the main process writes the cache file and every
    process returns the features read from it.
    """
    state = process_state()
    chunks = [range(start, min(start + chunk_size, len(items))) for start in range(0, len(items), chunk_size)]
    encode = _encode_rows(encoder, processor, items, batch_size)
    if cache_dir is None:
        return encode_chunks(chunks, encode, None).features
    path = Path(cache_dir) / f"item_features-{features_cache_key(encoder, processor, items)}.safetensors"
    features = _read_cache(path)
    state.wait_for_everyone()  # every process has looked before the main process may write the file
    if features is not None:
        return features
    work = path.with_suffix(".chunks")
    encoded = encode_chunks(chunks, encode, work)
    if state.is_main_process:
        save_features(encoded.features, path)
        shutil.rmtree(work)
        logger.info("item features cached at %s", path)
    state.wait_for_everyone()
    return encoded.features if state.is_main_process else load_features(path)


def _encode_rows(
    encoder: ItemEncoder, processor: GenRecProcessor, items: Dataset, batch_size: int
) -> Callable[[Sequence[int]], ItemFeatures]:
    """Encodes the rows of `items` at the given positions."""

    def encode(rows: Sequence[int]) -> ItemFeatures:
        return encoder.encode(items.select(rows), processor, batch_size=batch_size, show_progress=False)

    return encode


def _read_cache(path: Path) -> ItemFeatures | None:
    """The cached features at `path`, or `None` when there are none or the file is damaged."""
    if not path.exists():
        return None
    try:
        features = load_features(path)
    except (SafetensorError, TypeError) as error:
        logger.warning("the feature cache %s is damaged (%s): encoding the items again", path, error)
        return None
    logger.info("item features read from cache %s (the encoder does not run)", path)
    return features


__all__ = ["cached_item_features", "features_cache_key"]

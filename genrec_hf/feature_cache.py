"""Item content features computed once per (encoder, item table) and cached as safetensors."""

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

from datasets import Dataset
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ._atomic import atomic_path
from .encoders import ItemEncoder, ItemFeatures
from .processing_genrec import GenRecProcessor

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
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:20]


def cached_item_features(
    encoder: ItemEncoder,
    processor: GenRecProcessor,
    items: Dataset,
    cache_dir: str | Path | None,
    batch_size: int = 64,
) -> ItemFeatures:
    """Encodes every item of `items` (in table order) once; later calls with the same inputs read the cache."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"item_features-{features_cache_key(encoder, processor, items)}.safetensors"
        if path.exists():
            try:
                features = ItemFeatures(**load_file(path))
            except (SafetensorError, TypeError) as error:
                logger.warning("the feature cache %s is damaged (%s): encoding the items again", path, error)
            else:
                logger.info("item features read from cache %s (the encoder does not run)", path)
                return features
    features = encoder.encode(items, processor, batch_size=batch_size)
    if path is not None:
        with atomic_path(path) as partial:
            save_file({k: v.contiguous() for k, v in features.as_dict().items()}, partial)
        logger.info("item features cached at %s", path)
    return features


__all__ = ["cached_item_features", "features_cache_key"]

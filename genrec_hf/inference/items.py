"""New items for a trained model, without retraining: the model's item encoder, and appending encoded items to the
model, the processor and a catalog (content path: a new item has no trained ID embedding)."""

from collections.abc import Mapping, Sequence

from ..encoders import ItemEncoder, ItemFeatures
from ..modeling_genrec import GenRecModel
from ..processing_genrec import GenRecProcessor
from .catalog import ItemCatalog


def load_item_encoder(
    model: GenRecModel, name_or_path: str | None = None, encoder_type: str | None = None, dtype: str = "float32"
) -> ItemEncoder:
    """The encoder named by the model's config (or `name_or_path`), on the model's device, computing in `dtype`,
    checked against the feature sizes the model expects."""
    config = model.config
    if name_or_path is None:
        name_or_path, encoder_type = config.item_encoder_name_or_path, encoder_type or config.item_encoder_type
    if not name_or_path:
        raise ValueError("the model names no item encoder (config.item_encoder_name_or_path); pass one")
    encoder = ItemEncoder.from_pretrained(name_or_path, encoder_type, dtype=dtype)
    encoder.model.to(model.device)
    expected = (config.text_feature_dim, config.image_feature_dim)
    if (encoder.text_feature_dim, encoder.image_feature_dim) != expected:
        raise ValueError(
            f"item encoder {name_or_path} gives (text, image) features of sizes "
            f"{(encoder.text_feature_dim, encoder.image_feature_dim)}, but the model expects {expected}"
        )
    return encoder


def append_items(
    model: GenRecModel, processor: GenRecProcessor, parent_asins: Sequence[str], features: ItemFeatures
) -> list[int]:
    """Appends items with their content features to the model (content path, no retraining) and the processor."""
    if len(parent_asins) != len(features):
        raise ValueError(f"{len(parent_asins)} parent_asins but {len(features)} feature rows")
    processor.check_num_items(model.config.num_items)
    indices = model.add_items(**features.as_dict()).tolist()
    if processor.add_items(parent_asins) != indices:
        raise RuntimeError("model and processor assigned different indices to new items")
    return indices


def add_items_to_catalog(
    model: GenRecModel,
    processor: GenRecProcessor,
    items: Sequence[Mapping],
    encoder: ItemEncoder | None = None,
    catalog: ItemCatalog | None = None,
    batch_size: int = 64,
) -> list[int]:
    """Encodes `items` (records with `parent_asin`, text fields, optional `image_path`) through the item encoder and
    appends them to the model, the processor and `catalog`; they are recommendable at once. Returns their indices."""
    items = list(items)
    if not items:
        return []
    encoder = encoder or load_item_encoder(model)
    features = encoder.encode(items, processor, batch_size=batch_size, show_progress=False)
    indices = append_items(model, processor, [item["parent_asin"] for item in items], features)
    if catalog is not None:
        catalog.extend(model, processor, [item.get("title") for item in items])
    return indices


__all__ = ["add_items_to_catalog", "append_items", "load_item_encoder"]

"""Item content: the item-text template and image loading, the one place both are defined.

Shipped beside `processing_genrec.py` as remote code, so it imports only the standard library and PIL.
"""

import json
import logging
from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)

DEFAULT_TEXT_FIELDS = ("title", "store", "categories", "features", "description", "details")


def render_item_text(item: Mapping, text_fields: Sequence[str] = DEFAULT_TEXT_FIELDS) -> str:
    """The item's text: its `text_fields` in order, as `Field: value` parts joined by `. ` (the title bare)."""
    parts = []
    for field in text_fields:
        value = flatten_field(item.get(field))
        if value:
            parts.append(value if field == "title" else f"{field.replace('_', ' ').capitalize()}: {value}")
    return ". ".join(parts)


def flatten_field(value) -> str:
    """Text of a metadata field: lists joined, dicts (or their JSON dumps) as `key: value` pairs."""
    if value is None:
        return ""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{") and stripped.endswith("}"):
            try:
                value = json.loads(stripped)
            except json.JSONDecodeError:
                return stripped
        else:
            return stripped
    if isinstance(value, Mapping):
        return "; ".join(f"{k}: {flatten_field(v)}" for k, v in value.items() if flatten_field(v))
    if isinstance(value, (list, tuple)):
        return ", ".join(text for text in (flatten_field(v) for v in value) if text)
    return str(value)


def load_image(path: str | None):
    """The RGB image at `path`, or `None` when there is no path or the file is missing or unreadable."""
    if not path:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as error:
        logger.warning("image %s is unreadable (%s); the item is encoded without an image", path, error)
        return None


__all__ = ["DEFAULT_TEXT_FIELDS", "flatten_field", "load_image", "render_item_text"]

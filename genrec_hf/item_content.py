"""Item content: the item-text template and image loading, the one place both are defined.

Shipped beside `processing_genrec.py` as remote code, so it imports only the standard library and PIL.
"""

import json
import logging
from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)

DEFAULT_TEXT_FIELDS = ("title", "store", "categories", "features", "description", "details")
# Largest photo decoded: 40 megapixels (an RGB copy of 120 MB); larger ones, and PIL's decompression bombs, are masked.
MAX_IMAGE_PIXELS = 40_000_000


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


def open_image_safely(source, max_pixels: int = MAX_IMAGE_PIXELS):
    """`PIL.Image.open(source)` after checking the header only: a photo over `max_pixels` (or a decompression bomb)
    raises `ValueError` before a single pixel is decoded. Close the returned image."""
    from PIL import Image

    try:
        image = Image.open(source)
    except Image.DecompressionBombError as error:
        raise ValueError(f"decompression bomb ({error})") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ValueError(f"{width}x{height} pixels is over the limit of {max_pixels:,}")
    return image


def load_image(path: str | None):
    """The RGB image at `path`, or `None` when there is no path, or the file is missing, unreadable or larger than
    `MAX_IMAGE_PIXELS` (decoding is bounded: a huge or malicious photo is refused from its header)."""
    if not path:
        return None
    from PIL import UnidentifiedImageError

    try:
        with open_image_safely(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as error:
        logger.warning("image %s is unreadable (%s); the item is encoded without an image", path, error)
        return None


__all__ = [
    "DEFAULT_TEXT_FIELDS", "MAX_IMAGE_PIXELS", "flatten_field", "load_image", "open_image_safely", "render_item_text",
]  # fmt: skip

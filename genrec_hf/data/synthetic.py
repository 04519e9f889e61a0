"""The embedded SYNTHETIC sample: a small catalog in exactly the Amazon Reviews 2023 raw schema.

Items belong to taste clusters ("blue ceramic mugs", "red wool scarves", ...) that both their text (title,
features, description) and their 64x64 PNG image (colour and shape) reveal. Users follow one or two tastes and
tend to buy the next style of the line they bought last, so a sequence model beats popularity. Everything is
labelled synthetic (store, titles, category) and the output is byte-for-byte deterministic for a seed.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
from pathlib import Path

logger = logging.getLogger(__name__)

SYNTHETIC_CATEGORY = "Synthetic_Sample"
STORE = "Synthetic Sample Store"
# (colour, RGB, material, product, image shape)
CLUSTERS = [
    ("blue", (40, 80, 200), "ceramic", "mug", "circle"),
    ("red", (200, 40, 40), "wool", "scarf", "bar"),
    ("green", (40, 160, 60), "glass", "vase", "triangle"),
    ("yellow", (230, 200, 30), "cotton", "tote bag", "square"),
    ("purple", (130, 50, 170), "silk", "tie", "diamond"),
    ("orange", (240, 130, 20), "leather", "wallet", "ellipse"),
    ("black", (20, 20, 20), "steel", "knife", "cross"),
    ("pink", (240, 120, 180), "soap", "bar of soap", "hexagon"),
    ("brown", (120, 70, 30), "wooden", "bowl", "semicircle"),
    ("teal", (20, 150, 150), "linen", "napkin", "star"),
]
STYLES = ["classic", "modern", "rustic", "minimal", "vintage", "striped", "dotted", "oversized", "compact", "handmade"]
START_MS, SPAN_MS, DAY_MS = 1546300800000, 4 * 365 * 86_400_000, 86_400_000  # users start in 2019-2022


def _item(index: int) -> dict:
    """Cluster, style and text of catalog item `index` (items are dealt to clusters round-robin)."""
    colour, _, material, product, shape = CLUSTERS[index % len(CLUSTERS)]
    variant = index // len(CLUSTERS)
    style = STYLES[variant % len(STYLES)]
    return {
        "parent_asin": f"SYN{index:07d}",
        "cluster": index % len(CLUSTERS),
        "variant": variant,
        "title": f"{style.capitalize()} {colour} {material} {product} No. {variant + 1} (synthetic sample)",
        "features": [f"Colour: {colour}", f"Material: {material}", f"Style: {style}", f"Shape on photo: {shape}"],
        "description": [
            f"A {style} {product} made of {material}, in {colour}. Part {variant + 1} of the {colour} {material} "
            f"{product} line.",
            "Synthetic item generated for testing genrec_hf; not a real product.",
        ],
        "product": product,
        "colour": colour,
        "material": material,
    }


def _meta_record(item: dict) -> dict:
    return {
        "main_category": "Synthetic Sample",
        "title": item["title"],
        "average_rating": None,
        "rating_number": None,
        "features": item["features"],
        "description": item["description"],
        "price": round(5 + 3.5 * item["variant"] + item["cluster"], 2),
        "images": [],
        "videos": [],
        "store": STORE,
        "categories": ["Synthetic Sample", f"{item['material'].capitalize()} {item['product']}s"],
        "details": {"Color": item["colour"], "Material": item["material"], "Synthetic": "yes"},
        "parent_asin": item["parent_asin"],
        "bought_together": None,
    }


def _user_sequence(rng: random.Random, lines: list[list[int]]) -> list[int]:
    """A user's purchases: mostly the next style of the current line, sometimes any item of the taste, rarely a
    jump to the user's second taste; early styles are more popular, and nothing is bought twice."""
    tastes = rng.sample(range(len(lines)), 2 if rng.random() < 0.5 else 1)
    cluster, bought = tastes[0], []
    position = min(int(rng.expovariate(0.25)), len(lines[cluster]) - 1)
    for _ in range(rng.randint(7, 14)):
        line = [i for i in lines[cluster] if i not in bought]
        if not line:
            break
        if bought and rng.random() < 0.2:
            position = rng.randrange(len(lines[cluster]))
        candidates = [i for i in lines[cluster][position:] if i not in bought] or line
        bought.append(candidates[0])
        position = lines[cluster].index(candidates[0]) + 1
        if len(tastes) > 1 and rng.random() < 0.12:
            cluster = tastes[1] if cluster == tastes[0] else tastes[0]
            position = min(int(rng.expovariate(0.25)), len(lines[cluster]) - 1)
    return bought


def _draw(item: dict, path: Path) -> None:
    """A 64x64 PNG: the cluster's colour and shape, its size and corner dots telling the style apart."""
    from PIL import Image, ImageDraw

    _, rgb, _, _, shape = CLUSTERS[item["cluster"]]
    image = Image.new("RGB", (64, 64), (235, 235, 235))
    draw = ImageDraw.Draw(image)
    r = 14 + 3 * (item["variant"] % 5)
    c = 32
    box = (c - r, c - r, c + r, c + r)
    polygon = {
        "triangle": [(c, c - r), (c + r, c + r), (c - r, c + r)],
        "diamond": [(c, c - r), (c + r, c), (c, c + r), (c - r, c)],
        "hexagon": [(c - r, c), (c - r // 2, c - r), (c + r // 2, c - r), (c + r, c), (c + r // 2, c + r),
                    (c - r // 2, c + r)],
        "star": [(c, c - r), (c + r // 3, c - r // 3), (c + r, c), (c + r // 3, c + r // 3), (c, c + r),
                 (c - r // 3, c + r // 3), (c - r, c), (c - r // 3, c - r // 3)],
    }  # fmt: skip
    if shape in polygon:
        draw.polygon(polygon[shape], fill=rgb)
    elif shape == "circle":
        draw.ellipse(box, fill=rgb)
    elif shape == "ellipse":
        draw.ellipse((c - r, c - r // 2, c + r, c + r // 2), fill=rgb)
    elif shape == "square":
        draw.rectangle(box, fill=rgb)
    elif shape == "bar":
        draw.rectangle((c - r, c - 5, c + r, c + 5), fill=rgb)
    elif shape == "cross":
        draw.rectangle((c - r, c - 4, c + r, c + 4), fill=rgb)
        draw.rectangle((c - 4, c - r, c + 4, c + r), fill=rgb)
    else:  # semicircle
        draw.pieslice(box, 0, 180, fill=rgb)
    for dot in range(item["variant"] % len(STYLES) // 2 + 1):
        draw.ellipse((3 + 6 * dot, 3, 7 + 6 * dot, 7), fill=(90, 90, 90))
    image.save(path, format="PNG")


def _write_jsonl_gz(path: Path, records) -> None:
    """Gzipped JSON lines with a fixed header (no name, no time), so the bytes depend only on the records."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        for record in records:
            out.write((json.dumps(record, ensure_ascii=False) + "\n").encode())


def write_synthetic_sample(
    output_dir: str | Path, num_users: int = 600, num_items: int = 300, seed: int = 0
) -> tuple[Path, Path, Path]:
    """Writes `Synthetic_Sample.jsonl.gz`, `meta_Synthetic_Sample.jsonl.gz` and `images/<parent_asin>.png` into
    `output_dir`; returns `(reviews_path, meta_path, images_dir)`. The same arguments give identical bytes."""
    logger.warning(
        "writing the SYNTHETIC sample (%d users, %d items; generated, not real Amazon data)", num_users, num_items
    )
    output_dir = Path(output_dir)
    images_dir = output_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    items = [_item(i) for i in range(num_items)]
    lines = [[i for i in range(num_items) if i % len(CLUSTERS) == c] for c in range(len(CLUSTERS))]
    lines = [line for line in lines if line]

    def reviews():
        for user in range(num_users):
            timestamp = START_MS + rng.randrange(SPAN_MS)
            for index in _user_sequence(rng, lines):
                item = items[index]
                timestamp += DAY_MS // 24 + int(rng.expovariate(1 / 20) * DAY_MS)
                yield {
                    "rating": rng.choice([3.0, 4.0, 4.0, 5.0, 5.0, 5.0]),
                    "title": f"Synthetic review of a {item['colour']} {item['product']}",
                    "text": f"Synthetic review: this {item['colour']} {item['material']} {item['product']} is fine.",
                    "images": [],
                    "asin": item["parent_asin"],
                    "parent_asin": item["parent_asin"],
                    "user_id": f"SYNTHETICUSER{user:06d}",
                    "timestamp": timestamp,
                    "helpful_vote": 0,
                    "verified_purchase": True,
                }

    reviews_path = output_dir / f"{SYNTHETIC_CATEGORY}.jsonl.gz"
    meta_path = output_dir / f"meta_{SYNTHETIC_CATEGORY}.jsonl.gz"
    _write_jsonl_gz(reviews_path, reviews())
    _write_jsonl_gz(meta_path, (_meta_record(item) for item in items))
    for item in items:
        _draw(item, images_dir / f"{item['parent_asin']}.png")
    return reviews_path, meta_path, images_dir

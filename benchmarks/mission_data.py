"""Raw Amazon Reviews 2023 files of the mission's size: Handmade_Products + Health_and_Personal_Care, generated.

    python benchmarks/mission_data.py /tmp/genrec_mission/raw --fraction 0.1

The real files cannot be downloaded here, so `write_mission_files` writes files in their raw schema
(`<Category>.jsonl.gz` reviews, `meta_<Category>.jsonl.gz` items) with the published sizes of the two categories
(Amazon Reviews 2023: Handmade 586.6k users, 164.7k items, 664.2k ratings; Health 461.7k / 60.3k / 494.1k), times
`fraction`, and their shape:

- **users**: most write one review (the published means are 1.13 and 1.07 reviews per user); the rest have a
  power-law tail of longer histories, so only ~1% of users have the four reviews a training sequence needs;
- **items**: every item has at least one review, the rest follow a power law of popularity;
- **order**: items belong to product lines of ~50 items sharing words; a user reviews items of one line, in the
  line's order, so the next item is predictable (as a sequence model needs);
- **text**: titles, bullet features, descriptions and details of the published metadata length (~760 and ~670
  tokens per item), reviews of ~35-50 tokens.

Everything is written streaming (one record in memory at a time, plus one integer per review), every value is marked
synthetic (store and user ids), and the bytes depend only on `fraction` and `seed`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LINE_SIZE = 50  # items per product line
MAX_USER_REVIEWS = 300
START_MS, SPAN_MS, DAY_MS = 1_293_840_000_000, 12 * 365 * 86_400_000, 86_400_000  # reviews from 2011 to 2022


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split(", "))


@dataclass(frozen=True)
class Category:
    """A category's published size and the vocabulary its text is drawn from."""

    name: str
    main_category: str
    users: int
    items: int
    ratings: int
    category_path: tuple[str, ...]
    products: tuple[str, ...]
    materials: tuple[str, ...]
    qualities: tuple[str, ...]
    audiences: tuple[str, ...]
    detail_names: tuple[str, ...]


HANDMADE = Category(
    name="Handmade_Products",
    main_category="Handmade",
    users=586_600,
    items=164_700,
    ratings=664_200,
    category_path=("Handmade Products",),
    products=_words(
        "necklace, pendant, earrings, bracelet, ring, anklet, keychain, mug, candle, soap bar, tote bag, wall "
        "art print, wooden sign, ornament, throw blanket, pillow cover, coaster set, cutting board, planter, "
        "journal, bookmark, greeting card, baby blanket, bib, dog collar, cat toy, hair clip, scrunchie, face "
        "mask, apron, quilt, wreath, vase, bowl, spoon, leather wallet, belt, hat, scarf, sweater, socks, lip "
        "balm, bath bomb, body butter"
    ),
    materials=_words(
        "sterling silver, 14k gold filled, rose gold, stainless steel, walnut wood, maple wood, bamboo, "
        "resin, ceramic, stoneware, porcelain, soy wax, beeswax, organic cotton, linen, merino wool, alpaca "
        "yarn, full grain leather, vegan leather, recycled glass, brass, copper, polymer clay, natural shea "
        "butter, goat milk, lavender essential oil, hemp, silk, velvet, macrame cord"
    ),
    qualities=_words(
        "personalized, custom engraved, hand stamped, hand painted, minimalist, boho, rustic, vintage "
        "inspired, dainty, chunky, farmhouse, modern, floral, celestial, geometric, monogrammed, birthstone, "
        "eco friendly, small batch, one of a kind, hand knitted, hand poured"
    ),
    audiences=_words(
        "for women, for her, for mom, for grandma, for wife, for girlfriend, for men, for him, for dad, for "
        "best friend, for teacher, for bridesmaids, for new baby, for dog lovers, for cat lovers, for nurses, "
        "for graduates, for the home, for kids, for couples"
    ),
    detail_names=("Material", "Color", "Style", "Occasion", "Item Weight", "Package Dimensions", "Theme", "Size"),
)
HEALTH = Category(
    name="Health_and_Personal_Care",
    main_category="Health & Personal Care",
    users=461_700,
    items=60_300,
    ratings=494_100,
    category_path=("Health & Household",),
    products=_words(
        "vitamin C supplement, vitamin D3 softgels, magnesium glycinate, fish oil capsules, probiotic, "
        "multivitamin gummies, collagen peptides powder, melatonin tablets, electrolyte powder, zinc "
        "lozenges, elderberry syrup, turmeric curcumin, biotin capsules, fiber supplement, electric "
        "toothbrush, water flosser, dental floss picks, tongue scraper, blood pressure monitor, pulse "
        "oximeter, digital thermometer, heating pad, knee brace, wrist splint, posture corrector, compression "
        "socks, first aid kit, hand sanitizer, nasal spray, eye drops, ear plugs, sleep mask, pill organizer, "
        "reading glasses, massage gun, foam roller, hot cold pack, bandages, cough drops, allergy relief "
        "tablets, pregnancy test, scale, humidifier"
    ),
    materials=_words(
        "sugar free, gluten free, non GMO, vegan, organic, extra strength, fast acting, time release, "
        "unflavored, lemon flavored, berry flavored, fragrance free, latex free, BPA free, rechargeable, "
        "waterproof, medical grade, breathable, adjustable, hypoallergenic, travel size, family size, "
        "dermatologist tested, third party tested, high potency"
    ),
    qualities=_words(
        "clinically studied, doctor recommended, premium, professional, easy to swallow, lightweight, "
        "portable, gentle, maximum absorption, daily support, long lasting, value pack, 2 pack, 60 count, 120 "
        "count, 30 day supply, 90 day supply, 2000 IU, 1000 mg, 500 mg"
    ),
    audiences=_words(
        "for adults, for women, for men, for seniors, for kids, for athletes, for travel, for immune support, "
        "for sleep, for joint health, for heart health, for digestion, for sensitive teeth, for back pain, "
        "for home use, for energy, for hair skin and nails"
    ),
    detail_names=_words(
        "Brand, Item Form, Unit Count, Number of Items, Flavor, Primary Supplement Type, Package Dimensions, "
        "Item Weight, Manufacturer, Age Range (Description), UPC"
    ),
)
CATEGORIES = (HANDMADE, HEALTH)

FILLER = (
    "this item is made to order and ships within three business days", "each piece is carefully checked before it "
    "leaves our workshop", "please allow for slight variations in color and texture", "we use only high quality "
    "materials sourced from trusted suppliers", "the perfect gift for birthdays anniversaries and holidays",
    "comes ready to gift in a reusable box", "easy to clean with warm water and mild soap", "store in a cool dry "
    "place away from direct sunlight", "if you have any questions about your order please send us a message",
    "our small family business has been making these for over ten years", "designed to last for everyday use",
    "satisfaction guaranteed or your money back within thirty days", "not intended to diagnose treat cure or "
    "prevent any disease", "consult your physician before use if you are pregnant or nursing", "keep out of reach "
    "of children", "manufactured in a facility that follows good manufacturing practices", "free of artificial "
    "colors preservatives and fillers", "lightweight and comfortable enough to wear all day", "fits most sizes and "
    "can be adjusted for a snug fit", "packaged in recyclable materials to reduce waste",
)  # fmt: skip
REVIEW_WORDS = (
    "love it great quality arrived quickly exactly as described works well would buy again gift recommend "
    "smaller than expected beautiful sturdy color size perfect daughter wife husband easy use smell nice value "
    "price disappointed broke returned fine okay cheap feels good helps noticed difference taste pills box"
).split()


def published_totals(fraction: float) -> dict[str, int]:
    """Users, items and reviews of the two categories together at `fraction` of their published size."""
    return {key: sum(round(getattr(c, key) * fraction) for c in CATEGORIES) for key in ("users", "items", "ratings")}


def _tail_lengths(rng: np.random.Generator, count: int, exponent: float = 2.5) -> np.ndarray:
    """`count` draws of a discrete power law `P(l) ~ l^-exponent` on `1..MAX_USER_REVIEWS - 1`."""
    support = np.arange(1, MAX_USER_REVIEWS)
    probabilities = support**-exponent
    return rng.choice(support, size=count, p=probabilities / probabilities.sum())


def user_lengths(rng: np.random.Generator, users: int, ratings: int) -> np.ndarray:
    """Reviews per user, summing to `ratings`: one review for most users, `1 + power-law tail` for the rest (their
    share set so the mean is `ratings / users`)."""
    lengths = np.ones(users, dtype=np.int64)
    extra_needed = ratings - users
    if extra_needed <= 0 or users == 0:
        return lengths
    tail = _tail_lengths(rng, users)
    tail_users = min(users, max(1, round(extra_needed / tail.mean())))
    chosen = rng.choice(users, size=tail_users, replace=False)
    lengths[chosen] += tail[:tail_users]
    # exact total: trim or pad single reviews on random tail users (never below one review)
    surplus = int(lengths.sum()) - ratings
    while surplus:
        user = chosen[rng.integers(len(chosen))]
        if surplus > 0 and lengths[user] > 1:
            lengths[user] -= 1
            surplus -= 1
        elif surplus < 0:
            lengths[user] += 1
            surplus += 1
    return lengths


def item_slots(rng: np.random.Generator, items: int, ratings: int, exponent: float = 1.0) -> np.ndarray:
    """Every review's item: each item once, the remaining reviews drawn by a power law over a random popularity
    order (the most popular item gets ~3% of the reviews)."""
    if ratings <= items:
        return rng.permutation(items)[:ratings]
    popularity_rank = rng.permutation(items)
    weights = (popularity_rank + 10.0) ** -exponent
    counts = 1 + rng.multinomial(ratings - items, weights / weights.sum())
    return np.repeat(np.arange(items), counts)


def user_item_lists(rng: np.random.Generator, category: Category, fraction: float):
    """`(user_number, items)` per user, items in purchase order. The review slots are grouped by product line (lines
    in random order, slots shuffled within a line); each user takes the next run of slots, so a user stays within a
    line (crossing into the next one at its end), and reviews the line's items in line order. A user who draws the
    same item twice reviews it once."""
    users, items = round(category.users * fraction), round(category.items * fraction)
    ratings = round(category.ratings * fraction)
    lengths = user_lengths(rng, users, ratings)
    slots = item_slots(rng, items, ratings)
    lines = slots // LINE_SIZE
    line_order = rng.permutation(int(lines.max()) + 1)
    slots = slots[np.lexsort((rng.random(len(slots)), line_order[lines]))]
    ends = np.cumsum(lengths)
    for user, (start, end) in enumerate(zip((ends - lengths).tolist(), ends.tolist())):
        yield user, np.unique(slots[start:end]).tolist()


class ItemText:
    """Deterministic metadata text of item `index` of a category: its line decides product, material and audience."""

    def __init__(self, category: Category, seed: int):
        self.category = category
        self.seed = seed

    def record(self, index: int) -> dict:
        c = self.category
        line = random.Random(f"{self.seed}-{c.name}-line-{index // LINE_SIZE}")
        product, material, audience = line.choice(c.products), line.choice(c.materials), line.choice(c.audiences)
        store = f"Synthetic {line.choice(c.qualities).title()} Shop {line.randrange(5000)}"
        rng = random.Random(f"{self.seed}-{c.name}-item-{index}")
        qualities = rng.sample(c.qualities, 3)
        title = (
            f"{qualities[0].title()} {material.title()} {product.title()} {audience.title()} - {qualities[1].title()} "
            f"{product.title()}, {rng.choice(c.qualities).title()} Gift, Style {index % LINE_SIZE + 1} of the "
            f"{material} {product} line, {rng.choice(c.materials).title()} {rng.choice(c.audiences).title()}"
        )
        features = [self._sentence(rng, product, material, qualities, 18, 40) for _ in range(rng.randint(3, 6))]
        description = [self._sentence(rng, product, material, qualities, 80, 170) for _ in range(rng.randint(1, 3))]
        details = {name: self._detail(rng, name, product, material) for name in rng.sample(c.detail_names, 6)}
        url = f"https://m.media-amazon.com/images/I/SYN{index:08d}"
        return {
            "main_category": c.main_category,
            "title": title,
            "average_rating": round(rng.uniform(3.0, 5.0), 1),
            "rating_number": rng.randrange(1, 2000),
            "features": features,
            "description": description,
            "price": round(rng.uniform(4, 80), 2) if rng.random() < 0.7 else None,
            "images": [{"thumb": f"{url}_T.jpg", "large": f"{url}.jpg", "variant": "MAIN", "hi_res": f"{url}_H.jpg"}],
            "videos": [],
            "store": store,
            "categories": [*c.category_path, product.title()] if rng.random() < 0.6 else [],
            "details": details,
            "parent_asin": item_asin(c, index),
            "bought_together": None,
        }

    @staticmethod
    def _sentence(rng: random.Random, product: str, material: str, qualities: list[str], low: int, high: int) -> str:
        words = [f"This {qualities[0]} {product} is made of {material} and is {qualities[1]} and {qualities[2]}."]
        count = len(words[0].split())
        target = rng.randint(low, high)
        while count < target:
            sentence = rng.choice(FILLER)
            words.append(sentence.capitalize() + ".")
            count += len(sentence.split())
        return " ".join(words)

    @staticmethod
    def _detail(rng: random.Random, name: str, product: str, material: str) -> str:
        if "Dimensions" in name:
            return f"{rng.uniform(1, 12):.2f} x {rng.uniform(1, 9):.2f} x {rng.uniform(0.5, 4):.2f} inches"
        if "Weight" in name:
            return f"{rng.uniform(0.5, 40):.1f} Ounces"
        if name in ("Material", "Item Form", "Primary Supplement Type"):
            return material.title()
        if name == "UPC":
            return str(rng.randrange(10**11, 10**12))
        if name in ("Unit Count", "Number of Items", "Size"):
            return str(rng.choice([1, 2, 3, 6, 12, 30, 60, 90, 120]))
        return f"{product.title()} {rng.randrange(100)}"


def item_asin(category: Category, index: int) -> str:
    return f"S{'H' if category is HANDMADE else 'P'}{index:08d}"


def _review(rng: random.Random, category: Category, user: int, item: int, timestamp: int) -> dict:
    words = rng.choices(REVIEW_WORDS, k=rng.randint(8, 60 if category is HANDMADE else 75))
    return {
        "rating": float(rng.choice((1, 2, 3, 4, 4, 5, 5, 5, 5, 5))),
        "title": " ".join(rng.choices(REVIEW_WORDS, k=rng.randint(1, 5))).capitalize(),
        "text": " ".join(words).capitalize() + ".",
        "images": [],
        "asin": item_asin(category, item),
        "parent_asin": item_asin(category, item),
        "user_id": f"SYNTHETIC{category.name[:2].upper()}{user:019d}",
        "timestamp": timestamp,
        "helpful_vote": rng.choice((0, 0, 0, 1, 2)),
        "verified_purchase": rng.random() < 0.9,
    }


def _write_jsonl_gz(path: Path, records) -> None:
    """Gzipped JSON lines with a fixed header (no file name, no time), written through a temporary name."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        for record in records:
            out.write((json.dumps(record) + "\n").encode())
    partial.replace(path)


def write_mission_files(output_dir: str | Path, fraction: float = 1.0, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Writes the review and metadata files of both categories at `fraction` of their published size into
    `output_dir` (existing complete files are kept: the bytes depend only on the arguments); returns
    `(review_paths, meta_paths)`."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    reviews, metas = [], []
    for category in CATEGORIES:
        review_path = output_dir / f"{category.name}.jsonl.gz"
        meta_path = output_dir / f"meta_{category.name}.jsonl.gz"
        if not review_path.exists():
            arrays = np.random.default_rng([seed, CATEGORIES.index(category)])
            rng = random.Random(f"{seed}-{category.name}-reviews")

            def records(category=category, arrays=arrays, rng=rng):
                for user, items in user_item_lists(arrays, category, fraction):
                    timestamp = START_MS + rng.randrange(SPAN_MS)
                    for item in items:
                        yield _review(rng, category, user, item, timestamp)
                        timestamp += DAY_MS // 24 + int(rng.expovariate(1 / 30) * DAY_MS)

            _write_jsonl_gz(review_path, records())
        if not meta_path.exists():
            text = ItemText(category, seed)
            _write_jsonl_gz(meta_path, (text.record(i) for i in range(round(category.items * fraction))))
        reviews.append(review_path)
        metas.append(meta_path)
    return reviews, metas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dir")
    parser.add_argument("--fraction", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    reviews, metas = write_mission_files(args.output_dir, args.fraction, args.seed)
    for path in [*reviews, *metas]:
        print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()

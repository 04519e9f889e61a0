"""Wall time and peak memory of a full `prepare_dataset` on generated raw files of Handmade_Products size.

    python benchmarks/bench_prepare_data.py                 # ~665k reviews, ~165k items (Amazon 2023 Handmade)
    python benchmarks/bench_prepare_data.py --fraction 0.25 # a quarter of that, to see how memory scales

The raw files are written by a generator (streamed to disk, never held in memory) into a temporary folder, in
the 2023 raw schema with review texts of realistic length; users and items follow long-tailed activity so the
5-core is a small, realistic part. The prepare runs in a fresh subprocess whose peak resident memory is
`resource.getrusage(RUSAGE_SELF).ru_maxrss` (the baseline after imports is reported beside it).
"""

import argparse
import gzip
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

HANDMADE_REVIEWS, HANDMADE_ITEMS = 665_000, 165_000
WORDS = (
    "lovely handmade gift quality colour stitching wood soap candle ring necklace mug bag card print "
    "beautiful arrived quickly seller recommend small bigger than expected daughter wife perfect"
).split()
CHILD = """
import json, resource, sys, time
from genrec_hf.data import prepare_dataset
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
data = prepare_dataset(sys.argv[1], sys.argv[2], output_dir=sys.argv[3])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "baseline_mb": base / 1024, "stats": data.stats}))
"""


def _text(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))


def _reviews(rng: random.Random, num_reviews: int, num_items: int):
    """Reviews grouped by user: most users write one, a long tail writes many; items are Zipf-popular."""
    cum_weights = list(itertools.accumulate(1 / (rank + 10) ** 1.0 for rank in range(num_items)))
    written = 0
    for user in itertools.count():
        count = 1 if rng.random() < 0.95 else min(2 + int(rng.paretovariate(1.2)), 300)
        count = min(count, num_reviews - written)
        items = set(rng.choices(range(num_items), cum_weights=cum_weights, k=count))
        for item in items:
            yield {
                "rating": float(rng.randint(1, 5)),
                "title": _text(rng, 1, 5),
                "text": _text(rng, 5, 80),
                "images": [],
                "asin": f"B{item:09d}",
                "parent_asin": f"B{item:09d}",
                "user_id": f"AE{(user * 2654435761) % 16**26:026X}",
                "timestamp": 1_262_304_000_000 + rng.randrange(13 * 365 * 86_400_000),
                "helpful_vote": 0,
                "verified_purchase": True,
            }
        written += count
        if written >= num_reviews:
            return


def _meta(rng: random.Random, num_items: int):
    for item in range(num_items):
        url = f"https://m.media-amazon.com/images/I/{item:09d}"
        yield {
            "main_category": "Handmade",
            "title": _text(rng, 3, 15),
            "average_rating": 4.5,
            "rating_number": rng.randint(1, 500),
            "features": [_text(rng, 3, 12) for _ in range(rng.randint(0, 5))],
            "description": [_text(rng, 10, 60) for _ in range(rng.randint(0, 2))],
            "price": None,
            "images": [{"thumb": f"{url}_T.jpg", "large": f"{url}.jpg", "variant": "MAIN", "hi_res": f"{url}_H.jpg"}],
            "videos": [],
            "store": _text(rng, 1, 3),
            "categories": ["Handmade Products", _text(rng, 1, 2)],
            "details": {"Material": _text(rng, 1, 2), "Color": _text(rng, 1, 1)},
            "parent_asin": f"B{item:09d}",
            "bought_together": None,
        }


def _write(path: Path, records) -> None:
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out:
        for record in records:
            out.write(json.dumps(record) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fraction", type=float, default=1.0, help="Size relative to Handmade_Products.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    num_reviews, num_items = int(HANDMADE_REVIEWS * args.fraction), int(HANDMADE_ITEMS * args.fraction)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reviews, meta = tmp / "Handmade_Products.jsonl.gz", tmp / "meta_Handmade_Products.jsonl.gz"
        rng = random.Random(args.seed)
        _write(reviews, _reviews(rng, num_reviews, num_items))
        _write(meta, _meta(rng, num_items))
        sizes = {p.name: p.stat().st_size / 2**20 for p in (reviews, meta)}
        env = {**os.environ, "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
        child = subprocess.run([sys.executable, "-c", CHILD, str(reviews), str(meta), str(tmp / "out")],
                               env=env, capture_output=True, text=True)  # fmt: skip
        if child.returncode:
            sys.exit(f"prepare failed:\n{child.stderr}")
        result = json.loads(child.stdout.strip().splitlines()[-1])
    stats = result["stats"]
    print(f"input: {num_reviews:,} reviews ({sizes[reviews.name]:.0f} MiB gz), {num_items:,} items "
          f"({sizes[meta.name]:.0f} MiB gz); {os.cpu_count()} CPU cores")  # fmt: skip
    print(f"5-core: {stats['users']:,} users, {stats['items']:,} items, {stats['interactions']:,} interactions")
    print(f"prepare_dataset wall time: {result['seconds']:.1f} s")
    print(f"peak RSS: {result['peak_mb']:.0f} MiB (after imports: {result['baseline_mb']:.0f} MiB)")


if __name__ == "__main__":
    main()

"""`genrec-prepare-data` / `scripts/prepare_data.py`: raw Amazon Reviews 2023 files -> prepared splits on disk.

Exit status: 0 when the data is prepared; 2 for a bad argument (one line on stderr, before any work); 1 when the
files cannot be read or downloaded, or `--strict` meets an invalid record (one line naming the file and line).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..data.hub_files import AMAZON_CATEGORIES, AMAZON_REVIEWS_2023, category_paths
from ..data.images import fetch_images
from ..data.prepare import format_stats, prepare_dataset
from ..data.processing import SPLIT_PROTOCOLS
from ..data.synthetic import write_synthetic_sample
from ._cli import CommandParser, check_data_sources


@dataclass
class PrepareDataArguments:
    output_dir: str = field(metadata={"help": "Where splits/, items/ and stats.json are written."})
    reviews: list[str] | None = field(
        default=None,
        metadata={
            "help": "Review files or globs, local or hf://, plain or .gz: <Category>.jsonl, interaction CSVs "
            "(user_id,parent_asin,rating,timestamp), or official splits (last_out_w_his/<Category>.train.csv)."
        },
    )
    meta: list[str] | None = field(
        default=None, metadata={"help": "Metadata files or globs, local or hf://: meta_<Category>.jsonl(.gz)."}
    )
    categories: list[str] | None = field(
        default=None,
        metadata={
            "help": f"Amazon Reviews 2023 categories downloaded from the Hub dataset {AMAZON_REVIEWS_2023} "
            "(cached; HF_HUB_OFFLINE=1 uses the cache), e.g. Handmade_Products Health_and_Personal_Care.",
            "choices": list(AMAZON_CATEGORIES),
        },
    )
    official_split: bool = field(
        default=False,
        metadata={"help": "With --categories: download the official 5-core split of --split instead of raw reviews."},
    )
    images_dir: str | None = field(default=None, metadata={"help": "Local item photos named <parent_asin>.<ext>."})
    kcore: int = field(default=5, metadata={"help": "Iterative k-core on users and items (0 or 1 disables it)."})
    split: str = field(default="leave_one_out", metadata={"help": "Split protocol.", "choices": list(SPLIT_PROTOCOLS)})
    strict: bool = field(default=False, metadata={"help": "Fail on the first invalid record (file:line, field)."})
    synthetic: bool = field(
        default=False, metadata={"help": "Write and use the embedded SYNTHETIC sample when no --reviews are given."}
    )
    image_cache_dir: str | None = field(
        default=None, metadata={"help": "Content-addressed image cache (filled by --fetch_images), used as image_path."}
    )
    fetch_images: bool = field(
        default=False, metadata={"help": "Download the items' image URLs into --image_cache_dir (resumable)."}
    )


def main(argv: list[str] | None = None) -> dict:
    """Parses the arguments, prepares (and optionally fetches images), prints and returns the statistics."""
    parser = CommandParser(PrepareDataArguments)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    if args.fetch_images and not args.image_cache_dir:
        parser.error("--fetch_images needs --image_cache_dir")
    check_data_sources(parser, args)
    hub_reviews, hub_meta = category_paths(args.categories or [], args.split if args.official_split else None)
    reviews, meta, images_dir = [*(args.reviews or []), *hub_reviews], [*(args.meta or []), *hub_meta], args.images_dir
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")
    if not reviews:
        if not args.synthetic:
            parser.error("give --reviews (and --meta), --categories, or --synthetic for the embedded SYNTHETIC sample")
        reviews, meta, images_dir = write_synthetic_sample(Path(args.output_dir) / "synthetic_raw")

    def prepare():
        return prepare_dataset(
            reviews, meta, output_dir=args.output_dir, images_dir=images_dir, kcore=args.kcore, split=args.split,
            strict=args.strict, image_cache_dir=args.image_cache_dir,
        )  # fmt: skip

    try:
        data = prepare()
        if args.fetch_images and fetch_images(data.items, args.image_cache_dir).downloaded:
            data = prepare()  # the cache changed, so the fingerprint did: image paths are refreshed
    except (OSError, ValueError) as error:  # the message names the file, line, step or failed download: no traceback
        raise SystemExit(f"{parser.prog}: error: {error}") from None
    print(format_stats(data.stats))
    print(f"saved to {args.output_dir} (stats.json, splits/, items/)")
    return data.stats


__all__ = ["PrepareDataArguments", "main"]

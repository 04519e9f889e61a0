"""`genrec-prepare-data` / `scripts/prepare_data.py`: raw Amazon Reviews 2023 files -> prepared splits on disk."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

from ..data.images import fetch_images
from ..data.prepare import format_stats, prepare_dataset
from ..data.processing import SPLIT_PROTOCOLS
from ..data.synthetic import write_synthetic_sample


@dataclass
class PrepareDataArguments:
    output_dir: str = field(metadata={"help": "Where splits/, items/ and stats.json are written."})
    reviews: list[str] | None = field(
        default=None,
        metadata={
            "help": "Review files or globs: <Category>.jsonl(.gz), *.rating_only.csv(.gz) or *_w_his.*.csv(.gz)."
        },
    )
    meta: list[str] | None = field(
        default=None, metadata={"help": "Metadata files or globs: meta_<Category>.jsonl(.gz)."}
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
    parser = HfArgumentParser(PrepareDataArguments)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s")
    if args.fetch_images and not args.image_cache_dir:
        parser.error("--fetch_images needs --image_cache_dir")
    reviews, meta, images_dir = args.reviews, args.meta, args.images_dir
    if not reviews:
        if not args.synthetic:
            parser.error("give --reviews (and --meta), or --synthetic for the embedded SYNTHETIC sample")
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
    except (OSError, ValueError) as error:  # the message names the file, line or step: no traceback
        raise SystemExit(f"prepare_data failed: {error}") from None
    print(format_stats(data.stats))
    print(f"saved to {args.output_dir} (stats.json, splits/, items/)")
    return data.stats


__all__ = ["PrepareDataArguments", "main"]

"""Catalog encoding: items/s through a ViT-B/32-sized CLIP with the real pipeline, against the bare model forward.

    python benchmarks/bench_encoding.py [--items 96] [--batch_size 32]

The CLIP has openai/clip-vit-base-patch32's shapes and random weights (the real weights cannot be downloaded here;
timing does not depend on them) and the real CLIP BPE tokenizer. The pipeline is `ItemEncoder.encode`: JPEG decode,
resize and crop, item-text rendering and tokenization, then the two towers. The bare forward runs the same towers
on tensors made beforehand. The overhead is pipeline time / bare time - 1, measured in the same run, for fp32 and
bf16 weights.
"""

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

from genrec_hf import GenRecProcessor, ItemEncoder

REPO = Path(__file__).resolve().parents[1]
GIFT_CARDS = REPO.parent / "shared" / "data" / "amazon2018_gift_cards_mm"


def gift_card_items(count: int) -> list[dict]:
    """Real product photos with their metadata (repeated to `count`), or synthetic PNG items without the data."""
    photos = sorted((GIFT_CARDS / "images").glob("*.jpg"))
    if photos:
        titles = {}
        with gzip.open(GIFT_CARDS / "meta_Gift_Cards.json.gz", "rt") as lines:
            for line in lines:
                record = json.loads(line)
                titles[record.get("asin")] = record
        records = [{**titles.get(p.stem, {}), "parent_asin": p.stem, "image_path": str(p)} for p in photos]
    else:
        from genrec_hf.data.synthetic import write_synthetic_sample

        print(f"{GIFT_CARDS} not found: timing the synthetic sample's PNG items instead")
        _, meta, _ = write_synthetic_sample(Path(tempfile.mkdtemp()))
        records = [json.loads(line) for line in gzip.open(meta, "rt")]
    return [records[i % len(records)] for i in range(count)]


def best_times(functions, repeats: int = 3) -> list[float]:
    """Best wall time of each function over `repeats` interleaved rounds (after one warm-up round), so that load
    from other processes on this shared machine hits both sides alike."""
    best = [float("inf")] * len(functions)
    for round_ in range(repeats + 1):
        for i, function in enumerate(functions):
            start = time.perf_counter()
            function()
            if round_:
                best[i] = min(best[i], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=96)
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args()

    sys.path.insert(0, str(REPO))
    from tests.fixtures.offline_clip import clip_tokenizer_from_open_clip  # the test fixture's offline tokenizer

    torch.manual_seed(0)
    tokenizer = clip_tokenizer_from_open_clip()
    processor = GenRecProcessor(CLIPImageProcessorPil(), tokenizer, item_vocab=["placeholder"], text_max_length=77)
    items = gift_card_items(args.items)
    batches = [items[i : i + args.batch_size] for i in range(0, len(items), args.batch_size)]
    made = [processor.encode_items(batch) for batch in batches]  # tensors made beforehand for the bare forward
    tokens = torch.cat([m["attention_mask"].sum(1) for m in made]).float().mean()
    photos = sum(int(m["image_mask"].sum()) for m in made)
    print(
        f"{len(items)} items, batch {args.batch_size}, {torch.get_num_threads()} threads, "
        f"mean {tokens:.0f} text tokens, {photos} with a photo\n"
    )
    print("| weights | pipeline items/s | bare forward items/s | pipeline overhead |")
    print("|---|---|---|---|")
    for dtype in (torch.float32, torch.bfloat16):
        model = CLIPModel(CLIPConfig(projection_dim=512)).to(dtype)  # ViT-B/32 shapes
        encoder = ItemEncoder(model, "clip", "random ViT-B/32-sized CLIP")

        def pipeline(encoder=encoder):
            encoder.encode(items, processor, batch_size=args.batch_size, show_progress=False)

        @torch.no_grad()
        def bare(model=model, dtype=dtype):
            for inputs in made:
                model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
                model.get_image_features(pixel_values=inputs["pixel_values"].to(dtype))

        pipeline_s, bare_s = best_times([pipeline, bare])
        print(
            f"| {str(dtype).removeprefix('torch.')} | {len(items) / pipeline_s:.1f} | {len(items) / bare_s:.1f} | "
            f"{pipeline_s / bare_s - 1:+.1%} |"
        )


if __name__ == "__main__":
    main()

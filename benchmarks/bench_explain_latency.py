#!/usr/bin/env python
"""Latency of recommending and explaining for one user, and of similar items for one item, on a 10k-item catalog.

    python benchmarks/bench_explain_latency.py                  # 10k items, histories of 20 and 50, k=10
    python benchmarks/bench_explain_latency.py --items 100000 --threads 1

The model has the default shape (gated fusion of 512-d text and image features with ID embeddings, hidden 64,
2 layers; random weights and features: timing does not depend on them). Each call is timed end to end from
`parent_asin`s, as `scripts/recommend.py --explain` and the demo serve a user:

- recommend: `recommend_for_histories` with the precomputed catalog (exact search);
- recommend + explain: the same, then `explain_items` for its `k` recommendations (leave-one-out over the history,
  one batch of `history + 1` histories);
- similar items: `similar_items` for one item.

Goal: recommend + explain under 50 ms at 10k items.
"""

import argparse
import json
import statistics
import time


def timed(call, runs: int) -> list[float]:
    call()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--history_lens", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from genrec_hf import GenRecConfig, GenRecModel, GenRecProcessor
    from genrec_hf.inference import ItemCatalog, explain_items, recommend_for_histories, similar_items

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vocab = [f"B{i:09d}" for i in range(1, args.items + 1)]
    model = GenRecModel(GenRecConfig(num_items=args.items, item_encoder_name_or_path=None)).eval()
    config = model.config
    model.set_item_features(
        F.normalize(torch.randn(args.items, config.text_feature_dim), dim=-1),
        F.normalize(torch.randn(args.items, config.image_feature_dim), dim=-1),
        torch.rand(args.items) < 0.8,
    )
    model.set_item_popularity(torch.randint(1, 100, (args.items,)).float())
    processor = GenRecProcessor.without_content(vocab, config.max_seq_len)
    catalog = ItemCatalog.from_model(model, processor, {a: f"item {a}" for a in vocab})

    rows = []
    for length in args.history_lens:
        history = [vocab[i] for i in torch.randint(0, args.items, (length,)).tolist()]

        def recommend(history=history):
            return recommend_for_histories(model, processor, [history], k=args.k, catalog=catalog)

        def recommend_and_explain(history=history):
            (result,) = recommend(history)
            return explain_items(model, processor, [history], [result.parent_asins], catalog)

        for name, call in (("recommend", recommend), ("recommend + explain", recommend_and_explain)):
            times = timed(call, args.runs)
            rows.append({"call": name, "history": length, "p50_ms": 1e3 * statistics.median(times),
                         "max_ms": 1e3 * max(times)})  # fmt: skip
    times = timed(lambda: similar_items(model, processor, [vocab[0]], k=args.k, catalog=catalog), args.runs)
    rows.append({"call": "similar items", "history": None, "p50_ms": 1e3 * statistics.median(times),
                 "max_ms": 1e3 * max(times)})  # fmt: skip

    print(f"{args.items} items, k={args.k}, {torch.get_num_threads()} threads, {args.runs} runs each")
    print("| call | history | p50 ms | max ms |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['call']} | {row['history'] or '-'} | {row['p50_ms']:.1f} | {row['max_ms']:.1f} |")
    print(json.dumps({"items": args.items, "k": args.k, "threads": torch.get_num_threads(), "rows": rows}))


if __name__ == "__main__":
    main()

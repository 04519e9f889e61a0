#!/usr/bin/env python
"""What storing the content features in float16 (`item_features.safetensors`) costs in test quality.

    python benchmarks/bench_feature_precision.py       # the Beauty gated model (MiniLM text features), seed 0
    python benchmarks/bench_feature_precision.py --model_dir runs/x --data_dir data/x --features features.safetensors

A trained model is scored on the test split twice by the project's evaluator (`RankingEvaluator`: full catalog,
history excluded, 95% percentile bootstrap over users): with the float32 features it was trained with, and with the
same features rounded to float16, as a model saved now stores them. It prints HR@10 and NDCG@10 of both with their
CIs, the paired bootstrap CI of the NDCG@10 difference (the same resamples of users for both) and how many users'
target rank changed (in all, and where either rank is within the top 10), with a markdown table.

The float32 features come from `--features` (a safetensors file of `text_features`, `image_features`, `image_mask`
in catalog order without the padding row, as the feature cache stores them), or, by default, from the model folder's
`model.safetensors` when it was saved before the features had their own file (its features are float32 there).
"""

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoModel

from genrec_hf.data import load_prepared
from genrec_hf.evaluation import RankingEvaluator
from genrec_hf.evaluation.metrics import metrics_with_ci, per_user_metrics
from genrec_hf.processing_genrec import GenRecProcessor
from genrec_hf.sequences import eval_examples

RUN = Path("/tmp/genrec_bench/runs/beauty/gate-seed0")
DATA = Path("/tmp/genrec_bench/cache2/beauty")
NAMES = ("text_features", "image_features", "image_mask")


def float32_features(model_dir: Path, features: Path | None) -> dict[str, torch.Tensor]:
    """The float32 features of catalog rows `1..num_items`."""
    if features is not None:
        return load_file(features)
    weights = load_file(model_dir / "model.safetensors")
    if "item_text_features" not in weights:
        raise SystemExit(f"{model_dir}/model.safetensors holds no float32 features: give --features")
    return {name: weights[f"item_{name}"][1:] for name in NAMES}


def paired_difference_ci(a: torch.Tensor, b: torch.Tensor, samples: int, seed: int) -> tuple[float, float]:
    """95% percentile bootstrap CI of `mean(b) - mean(a)` over the same resamples of users."""
    generator = torch.Generator().manual_seed(seed)
    difference = (b - a).double()
    means = torch.stack(
        [
            difference[torch.randint(len(difference), (len(difference),), generator=generator)].mean()
            for _ in range(samples)
        ]
    )
    low, high = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.double))
    return low.item(), high.item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", type=Path, default=RUN)
    parser.add_argument("--data_dir", type=Path, default=DATA)
    parser.add_argument("--features", type=Path, default=None)
    parser.add_argument("--bootstrap_samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    features = float32_features(args.model_dir, args.features)
    model = AutoModel.from_pretrained(args.model_dir).eval()
    model.float()  # buffers in float32, so that the float32 features are kept as they are
    processor = GenRecProcessor.from_pretrained(args.model_dir)
    test = eval_examples(load_prepared(args.data_dir).splits["test"], processor)
    evaluator = RankingEvaluator(exclude_history=True, bootstrap_samples=args.bootstrap_samples, seed=args.seed)

    ranks, seconds = {}, {}
    for precision, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        model.set_item_features(**{name: features[name].to(dtype) for name in NAMES})
        assert model.item_text_features.dtype == torch.float32  # fp16 values, computed in float32 as a loaded model
        start = time.perf_counter()
        ranks[precision] = evaluator.rank(model, test)[0]
        seconds[precision] = time.perf_counter() - start

    results = {p: metrics_with_ci(r, (10,), args.bootstrap_samples, seed=args.seed) for p, r in ranks.items()}
    per_user = {p: per_user_metrics(r, (10,))["ndcg@10"] for p, r in ranks.items()}
    low, high = paired_difference_ci(per_user["fp32"], per_user["fp16"], args.bootstrap_samples, args.seed)
    changed = int((ranks["fp32"] != ranks["fp16"]).sum())
    changed_in_top10 = int(((ranks["fp32"] != ranks["fp16"]) & ((ranks["fp32"] <= 10) | (ranks["fp16"] <= 10))).sum())
    fp32, fp16 = results["fp32"]["ndcg@10"], results["fp16"]["ndcg@10"]
    summary = {
        "model": str(args.model_dir),
        "test_users": len(test),
        "text_feature_dim": model.config.text_feature_dim,
        "image_feature_dim": model.config.image_feature_dim,
        "max_abs_rounding_error": max(
            (features[n].float() - features[n].half().float()).abs().max().item()
            for n in NAMES[:2]
            if features[n].numel()
        ),
        **{f"{p}_{m}": results[p][m] for p in results for m in ("hr@10", "ndcg@10")},
        "ndcg@10_difference": fp16["value"] - fp32["value"],
        "ndcg@10_difference_ci": [low, high],
        "users_whose_rank_changed": changed,
        "users_whose_rank_changed_within_top10": changed_in_top10,
        "fp16_within_fp32_ci": fp32["ci_low"] <= fp16["value"] <= fp32["ci_high"],
        "eval_seconds": seconds,
    }
    print(json.dumps(summary, indent=2))

    def cell(metric: dict) -> str:
        return f"{metric['value']:.5f} [{metric['ci_low']:.5f}, {metric['ci_high']:.5f}]"

    print("\n| features | HR@10 | NDCG@10 |\n|---|---|---|")
    for precision in ("fp32", "fp16"):
        print(f"| {precision} | {cell(results[precision]['hr@10'])} | {cell(results[precision]['ndcg@10'])} |")
    print(
        f"\nNDCG@10 fp16 - fp32: {summary['ndcg@10_difference']:+.6f} (paired 95% CI [{low:+.6f}, {high:+.6f}]); "
        f"{changed} of {len(test)} users' target rank changed, {changed_in_top10} of them within the top 10"
    )


if __name__ == "__main__":
    main()

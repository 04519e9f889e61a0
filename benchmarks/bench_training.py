"""Training throughput against the machine's matmul peak, measured in the same run.

    python benchmarks/bench_training.py [--beauty ../shared/data/amazon2014_beauty_ids/Beauty.txt] [--steps 30]

Trains GenRec steps on Amazon 2014 Beauty sequences (22k users, 12k items; synthetic Zipf sequences of the same
shape when the file is absent) with cached 384-d content features and gated fusion, and prints sequences/s,
achieved GFLOP/s, the fraction of the fp32 / bf16 matmul peak and the peak memory for: random batches padded to
their longest sequence (what `scripts/train.py` does by default), length-bucketed batches
(`--train_sampling_strategy group_by_length`: less padding, but slower convergence), random batches under bf16
autocast, and the same with sampled negatives (`loss_negatives="sampled"`: in-batch targets plus 1,024 uniform
items instead of the full catalog). The ratio of the first two rows is the cost per epoch of random batches.
"""

import argparse
import resource
import time
from pathlib import Path

import torch

from genrec_hf import GenRecConfig, GenRecModel
from genrec_hf.training.collator import SequenceCollator

DEFAULT_BEAUTY = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon2014_beauty_ids" / "Beauty.txt"


def matmul_peak_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def beauty_sequences(path: Path, max_seq_len: int) -> tuple[list[list[int]], int]:
    """Training sequences (all but the last two items, at most max_seq_len + 1) and the number of items."""
    if path.exists():
        users = [[int(x) for x in line.split()[1:]] for line in path.read_text().splitlines() if line.strip()]
    else:
        print(f"{path} not found: using synthetic Zipf sequences of Beauty's shape")
        generator = torch.Generator().manual_seed(0)
        lengths = (torch.distributions.Exponential(1 / 8.9).sample((22363,)) + 5).long().clamp(max=200)
        weights = 1.0 / torch.arange(1, 12102).float()
        users = [(torch.multinomial(weights, int(n), True, generator=generator) + 1).tolist() for n in lengths]
    sequences = [u[:-2][-(max_seq_len + 1) :] for u in users if len(u) >= 4]
    return sequences, max(max(u) for u in users)


def step_flops(config: GenRecConfig, batch: dict) -> float:
    """Useful forward + backward (3x forward) FLOPs of one step: Transformer over the real (unpadded) positions,
    the item tower over the candidates and the history, and InfoNCE of the labelled positions against the candidates
    (the whole catalog, or with sampled negatives the in-batch targets plus the uniform draws, duplicates counted).
    Work spent on padding is not counted, so padding shows up as a lower achieved rate."""
    d, layers = config.hidden_size, config.num_hidden_layers
    length = batch["item_ids"].shape[1]
    positions = int(batch["attention_mask"].sum())
    labelled = int((batch["labels"] != -100).sum())
    candidates = config.num_items + 1
    if config.loss_negatives == "sampled":
        candidates = min(candidates, labelled + config.num_sampled_negatives)
    content = 2 * (config.text_feature_dim + config.image_feature_dim) * d + 2 * (2 * d + 1) * d
    transformer = layers * (2 * 12 * d * d + 2 * 2 * length * d) * positions
    item_tower = content * (candidates + positions)
    loss = 2 * d * candidates * labelled
    return 3 * (transformer + item_tower + loss)


def run(config, sequences, batch_size, steps, bucketed, bf16) -> dict:
    torch.manual_seed(0)
    model = GenRecModel(config)
    model.set_item_features(
        torch.nn.functional.normalize(torch.randn(config.num_items, config.text_feature_dim), dim=-1)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(sequences), generator=generator).tolist()
    if bucketed:
        order = sorted(order, key=lambda i: len(sequences[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches = [batches[int(i)] for i in torch.randperm(len(batches), generator=generator)]
    collate = SequenceCollator()
    flops, seen, elapsed = 0.0, 0, 0.0
    for step, indices in enumerate(batches[: steps + 2]):
        batch = collate([{"item_ids": sequences[i]} for i in indices])
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step >= 2:  # two warm-up steps
            elapsed += time.perf_counter() - start
            flops += step_flops(config, batch)
            seen += len(indices)
    return {"seq_per_s": seen / elapsed, "gflops": flops / elapsed / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beauty", type=Path, default=DEFAULT_BEAUTY)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--hidden_size", type=int, default=64)
    args = parser.parse_args()
    sequences, num_items = beauty_sequences(args.beauty, max_seq_len=50)
    config = GenRecConfig(
        num_items=num_items,
        hidden_size=args.hidden_size,
        num_attention_heads=2,
        max_seq_len=50,
        text_feature_dim=384,
        image_feature_dim=0,
        hidden_dropout_prob=0.2,
        attention_dropout_prob=0.2,
    )
    fp32_peak, bf16_peak = matmul_peak_gflops(torch.float32), matmul_peak_gflops(torch.bfloat16)
    mean_length = sum(len(s) - 1 for s in sequences) / len(sequences)
    print(
        f"{len(sequences)} training sequences, mean {mean_length:.1f} positions, {num_items} items, "
        f"d={args.hidden_size}, batch {args.batch_size}, {torch.get_num_threads()} threads"
    )
    print(f"matmul peak measured now: fp32 {fp32_peak:.0f} GFLOP/s, bf16 {bf16_peak:.0f} GFLOP/s\n")
    sampled = GenRecConfig.from_dict({**config.to_dict(), "loss_negatives": "sampled"})
    print("| batching | precision | negatives | sequences/s | achieved GFLOP/s | fraction of peak |")
    print("|---|---|---|---|---|---|")
    for name, run_config, bucketed, bf16 in (
        ("random (default)", config, False, False),
        ("length-bucketed", config, True, False),
        ("random", config, False, True),
        ("random", sampled, False, True),
    ):
        result = run(run_config, sequences, args.batch_size, args.steps, bucketed, bf16)
        peak = bf16_peak if bf16 else fp32_peak
        negatives = (
            "full catalog"
            if run_config.loss_negatives == "full"
            else f"in-batch + {run_config.num_sampled_negatives:,} uniform"
        )
        print(
            f"| {name} | {'bf16 autocast' if bf16 else 'fp32'} | {negatives} | {result['seq_per_s']:.0f} | "
            f"{result['gflops']:.1f} | {result['gflops'] / peak:.1%} |"
        )
    print(f"\npeak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()

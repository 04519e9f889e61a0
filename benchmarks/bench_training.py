"""Training throughput against the machine's matmul peak, measured in the same run.

    python benchmarks/bench_training.py [--beauty ../shared/data/amazon2014_beauty_ids/Beauty.txt] [--steps 30]
    python benchmarks/bench_training.py --catalog_sizes 4385 12101 50000 100000 225000 500000 --steps 10

Trains GenRec steps on Amazon 2014 Beauty sequences (22k users, 12k items; synthetic Zipf sequences of the same
shape when the file is absent) with cached 384-d content features and gated fusion, and prints sequences/s,
achieved GFLOP/s, the fraction of the fp32 / bf16 matmul peak and the peak memory for: random batches padded to
their longest sequence (what `scripts/train.py` does by default), length-bucketed batches
(`--train_sampling_strategy group_by_length`: less padding, but slower convergence), random batches under bf16
autocast, and the same with sampled negatives (`loss_negatives="sampled"`: in-batch targets plus 1,024 uniform
items instead of the full catalog). The ratio of the first two rows is the cost per epoch of random batches.

`--catalog_sizes` instead times the default training step (fp32, random batches) with the full-catalog and the
sampled loss for catalogs of each size, each run in a fresh process for its own peak memory: the same Beauty
sequences, their items spread over the larger catalog (or folded into a smaller one). This is the measurement behind
`loss_negatives="auto"` (`genrec_hf.losses_genrec.choose_loss_negatives`).
"""

import argparse
import json
import resource
import subprocess
import sys
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


def spread_items(sequences: list[list[int]], num_items: int, catalog_size: int) -> list[list[int]]:
    """The sequences with their `num_items` item ids mapped onto a catalog of `catalog_size` (injective when it is
    larger, folded modulo it when smaller)."""
    generator = torch.Generator().manual_seed(0)
    if catalog_size >= num_items:
        targets = torch.randperm(catalog_size, generator=generator)[:num_items] + 1
    else:
        targets = torch.arange(num_items) % catalog_size + 1
    mapping = torch.cat([torch.zeros(1, dtype=torch.long), targets])  # ids are 1-based; 0 stays padding
    return [mapping[torch.as_tensor(s)].tolist() for s in sequences]


def catalog_size_run(config: GenRecConfig, sequences, num_items: int, size: int, loss: str, args) -> dict:
    """Seconds per default training step (fp32, random batches) at catalog size `size` with `loss`."""
    sized = GenRecConfig.from_dict({**config.to_dict(), "num_items": size, "num_id_items": size})
    sized.loss_negatives = loss
    start = time.perf_counter()
    result = run(sized, spread_items(sequences, num_items, size), args.batch_size, args.steps, False, False)
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    return {"size": size, "loss": loss, "s_per_step": args.batch_size / result["seq_per_s"],
            "gflops": result["gflops"], "peak_rss_mb": peak, "wall_s": time.perf_counter() - start}  # fmt: skip


def catalog_size_table(args) -> None:
    print(f"default step (fp32, random batches of {args.batch_size}), {args.steps} timed steps after 2 warm-up steps, "
          f"{torch.get_num_threads()} threads; each run in its own process\n")  # fmt: skip
    print(
        "| catalog items | full softmax s/step | sampled s/step | full / sampled | peak RSS full | peak RSS sampled |"
    )
    print("|---|---|---|---|---|---|")
    rows = []
    for size in args.catalog_sizes:
        pair = {}
        for loss in ("full", "sampled"):
            command = [sys.executable, __file__, "--_size_run", f"{size},{loss}", *sys.argv[1:]]
            completed = subprocess.run(command, capture_output=True, text=True)
            if completed.returncode:
                sys.exit(f"{size} items, {loss}: failed\n{completed.stderr[-2000:]}")
            pair[loss] = json.loads(completed.stdout.strip().splitlines()[-1])
        full, sampled = pair["full"], pair["sampled"]
        rows.append(pair)
        print(f"| {size:,} | {full['s_per_step']:.3f} | {sampled['s_per_step']:.3f} | "
              f"{full['s_per_step'] / sampled['s_per_step']:.1f}x | {full['peak_rss_mb']:,.0f} MiB | "
              f"{sampled['peak_rss_mb']:,.0f} MiB |", flush=True)  # fmt: skip
        if args.json:  # after every size: a stopped run keeps what it measured
            Path(args.json).write_text(json.dumps(rows, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beauty", type=Path, default=DEFAULT_BEAUTY)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--catalog_sizes", type=int, nargs="*", help="Time full vs sampled softmax at these sizes.")
    parser.add_argument("--json", help="With --catalog_sizes: also write the rows here.")
    parser.add_argument("--_size_run", help=argparse.SUPPRESS)
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
    if args._size_run:
        size, loss = args._size_run.split(",")
        print(json.dumps(catalog_size_run(config, sequences, num_items, int(size), loss, args)))
        return
    if args.catalog_sizes:
        catalog_size_table(args)
        return
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

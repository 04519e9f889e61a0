#!/usr/bin/env python
"""Latency and throughput of recommendation over catalogs of 10k, 100k and 1M items: exact, FAISS IVF, and the
generative head's constrained beam search.

    python benchmarks/bench_recommend_latency.py                       # 10k, 100k, 1M items, d=64 (~5 min)
    python benchmarks/bench_recommend_latency.py --sizes 10000 --dims 64 256
    python benchmarks/bench_recommend_latency.py --methods exact generative --sizes 12101

For each catalog size and method a fresh worker process builds an ID-fused `GenRecModel` (hidden size `d`, 2 layers,
random weights) and a random unit-norm catalog `(N + 1, d)`, then times:

- single user: one history of `--history_len` items, `k=10`, exclude_seen: p50 / p99 latency of the whole call
  (user tower + scoring + top-k); exact is `model.recommend(catalog=...)`, FAISS is `rank_items` with an IVF index;
- batched: `--batch` histories per call, users per second;
- peak memory: the worker's peak resident set size (model + catalog + index + scores), and its growth over the
  RSS measured after imports.

Beside each row: the memory-bandwidth bound of one pass over the catalog vectors (`N d 4` bytes divided by the copy
bandwidth of a large tensor, measured at the start of the same run), the floor for any exact single-user scan.
Random vectors have no cluster structure, so IVF recall@10 here is a pessimistic figure; real catalogs cluster.

`generative` is a `GenRecForSemanticIDGeneration` of the default size (GPT-2 decoder, 128 wide, 4 layers; `d` does not
apply) whose items have random 3 x 256 codes plus a final code, decoding with 20 beams and `k=10` through `generate()`
(the same call `recommend` serves): its cost grows with the beams and the history, not with the catalog.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """This process's own peak RSS (`VmHWM`; `ru_maxrss` would carry over the parent's peak across fork + exec)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def copy_bandwidth_gbs(megabytes: int = 512, repeats: int = 7) -> float:
    """Bytes read plus bytes written per second by a large float32 tensor copy (best of `repeats`)."""
    import torch

    source = torch.rand(megabytes * 2**20 // 4)
    target = torch.empty_like(source)
    target.copy_(source)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        target.copy_(source)
        times.append(time.perf_counter() - start)
    return 2 * source.numel() * 4 / min(times) / 1e9


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timed(call, budget_s: float, min_runs: int, max_runs: int) -> list[float]:
    call()  # warm-up
    times = []
    while len(times) < min_runs or (len(times) < max_runs and sum(times) < budget_s):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def worker(size: int, dim: int, method: str, args) -> dict:
    import torch
    import torch.nn.functional as F

    from genrec_hf import GenRecConfig, GenRecForSemanticIDGeneration, GenRecGenerativeConfig, GenRecModel
    from genrec_hf.inference import ItemCatalog, build_faiss_index, faiss_recall_at_k
    from genrec_hf.inference.recommender import rank_items
    from genrec_hf.semantic_ids import disambiguation_codes

    if args.threads:
        torch.set_num_threads(args.threads)
    baseline = rss_mb()
    torch.manual_seed(0)
    config = GenRecConfig(
        num_items=size,
        hidden_size=dim,
        num_attention_heads=2,
        num_hidden_layers=2,
        fusion="id",
        text_feature_dim=0,
        image_feature_dim=0,
        max_seq_len=50,
    )
    model = GenRecModel(config).eval()
    vectors = F.normalize(torch.randn(size + 1, dim), dim=-1)
    catalog = ItemCatalog(vectors, parent_asins=[], titles=[])
    result = {"size": size, "dim": dim, "method": method, "catalog_mb": vectors[1:].numel() * 4 / 2**20}
    if method == "generative":
        model = GenRecForSemanticIDGeneration(GenRecGenerativeConfig(num_items=size, max_seq_len=args.history_len))
        prefixes = torch.randint(0, 256, (size, 3))
        model.set_semantic_ids(torch.cat([prefixes, disambiguation_codes(prefixes)[:, None]], dim=1), model.codebooks)
        start = time.perf_counter()
        model.trie  # noqa: B018 - built once, on first use, like a loaded model's
        result.update(catalog_mb=model.item_codes.numel() * 8 / 2**20, build_s=time.perf_counter() - start)
        result["index"] = "prefix trie"
        model.eval()
    if method == "ivf":
        start = time.perf_counter()
        catalog.index, info = build_faiss_index(vectors[1:], "ivf", nlist=args.nlist, nprobe=args.nprobe)
        result["build_s"] = time.perf_counter() - start
        result["recall_at_10"] = faiss_recall_at_k(catalog.index, vectors[1:], num_queries=args.recall_queries)
        result["index"] = f"nlist={info['nlist']} nprobe={info['nprobe']}"

    def histories(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        item_ids = torch.randint(1, size + 1, (count, args.history_len))
        return item_ids, torch.ones_like(item_ids)

    def run(item_ids, mask):
        with torch.no_grad():
            if method == "exact":
                return model.recommend(item_ids, mask, k=10, exclude_seen=True, catalog=catalog.embeddings)
            if method == "generative":
                return model.recommend(item_ids, mask, k=10, exclude_seen=True, num_beams=20)
            return rank_items(model, item_ids, mask, 10, True, catalog)

    one = histories(1)
    single = timed(lambda: run(*one), args.budget_s, min_runs=20, max_runs=2000)
    many = histories(args.batch if method != "generative" else min(args.batch, 64))
    batched = timed(lambda: run(*many), args.budget_s, min_runs=3, max_runs=50)
    result.update(
        p50_ms=1e3 * statistics.median(single),
        p99_ms=1e3 * percentile(single, 99),
        single_runs=len(single),
        users_per_s=len(many[0]) / statistics.median(batched),
        peak_rss_mb=peak_rss_mb(),
        rss_growth_mb=peak_rss_mb() - baseline,
    )
    return result


def run_worker(size: int, dim: int, method: str, argv: list[str]) -> dict:
    command = [sys.executable, __file__, "--_worker", f"{size},{dim},{method}", *argv]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        return {"size": size, "dim": dim, "method": method, "error": completed.stderr.strip().splitlines()[-1:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def format_table(rows: list[dict], bandwidth: float, bandwidth_one_thread: float, args) -> str:
    header = (
        f"{'items':>9} {'d':>4} {'method':<6} {'catalog':>9} {'BW bound':>9} {'p50':>9} {'p99':>9} "
        f"{'batch':>11} {'recall@10':>9} {'peak RSS':>9} {'RSS +':>8}  index"
    )
    units = (
        f"{'':>9} {'':>4} {'':<6} {'MiB':>9} {'ms':>9} {'ms':>9} {'ms':>9} "
        f"{'users/s':>11} {'':>9} {'MiB':>9} {'MiB':>8}"
    )
    lines = [header, units]
    for row in rows:
        if "error" in row:
            lines.append(f"{row['size']:>9} {row['dim']:>4} {row['method']:<6} failed: {row['error']}")
            continue
        bound_ms = 1e3 * row["catalog_mb"] * 2**20 / (bandwidth * 1e9)
        recall = f"{row['recall_at_10']:.3f}" if "recall_at_10" in row else "1 (exact)"
        recall = "beams" if row["method"] == "generative" else recall
        index = f"{row['index']}, built in {row['build_s']:.1f} s" if "index" in row else "torch matmul + topk"
        lines.append(
            f"{row['size']:>9} {row['dim']:>4} {row['method']:<6} {row['catalog_mb']:>9.1f} {bound_ms:>9.3f} "
            f"{row['p50_ms']:>9.3f} {row['p99_ms']:>9.3f} {row['users_per_s']:>11.0f} {recall:>9} "
            f"{row['peak_rss_mb']:>9.0f} {row['rss_growth_mb']:>8.0f}  {index}"
        )
    import torch

    threads = args.threads or torch.get_num_threads()
    lines.append(
        f"copy bandwidth {bandwidth:.1f} GB/s with all threads ({bandwidth_one_thread:.1f} GB/s with one; read + "
        f"write, {args.bandwidth_mb} MiB float32 copy, best of 7); BW bound = catalog bytes / all-thread bandwidth.\n"
        f"timings: torch {torch.__version__}, {threads} threads, "
        f"{os.cpu_count()} CPUs; single user: history of {args.history_len}, k=10; batch = {args.batch} users "
        "(generative: at most 64 users, 20 beams each)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[64])
    parser.add_argument("--methods", nargs="+", default=["exact", "ivf"], choices=["exact", "ivf", "generative"])
    parser.add_argument("--history_len", type=int, default=20)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--nlist", type=int, default=None, help="IVF lists (default 4 sqrt(N)).")
    parser.add_argument("--nprobe", type=int, default=32)
    parser.add_argument("--recall_queries", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    parser.add_argument("--budget_s", type=float, default=4.0, help="Timing budget per measurement.")
    parser.add_argument("--bandwidth_mb", type=int, default=512)
    parser.add_argument("--json", help="Also write the rows as JSON here.")
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        size, dim, method = args._worker.split(",")
        print(json.dumps(worker(int(size), int(dim), method, args)))
        return
    forwarded = list(argv if argv is not None else sys.argv[1:])
    import torch

    bandwidth = copy_bandwidth_gbs(args.bandwidth_mb)  # with every thread: the machine's bandwidth
    torch.set_num_threads(1)
    bandwidth_one_thread = copy_bandwidth_gbs(args.bandwidth_mb)
    rows = []
    for dim in args.dims:
        for size in args.sizes:
            for method in args.methods:
                started = time.perf_counter()
                rows.append(run_worker(size, dim, method, forwarded))
                print(f"  {size} items, d={dim}, {method}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(format_table(rows, bandwidth, bandwidth_one_thread, args))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"bandwidth_gbs": bandwidth, "bandwidth_one_thread_gbs": bandwidth_one_thread, "rows": rows},
                handle,
                indent=2,
            )


if __name__ == "__main__":
    main()

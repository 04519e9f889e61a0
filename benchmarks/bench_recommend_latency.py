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

**Trained vectors** (`--trained_model`): approximate search on the item vectors of a trained model, queried with the
user vectors of real histories (`--prepared`: its prepared data; test users with a non-empty history):

    python benchmarks/bench_recommend_latency.py --trained_model /tmp/genrec_mission/fraction-1/model_sampled \
        --prepared /tmp/genrec_mission/fraction-1/prepared --sizes 0 1000000 --threads 1

`--sizes 0` is the model's own catalog; a larger size repeats the catalog with Gaussian noise (`--noise` times each
coordinate's standard deviation; the first copy is the catalog itself). Every `--ann` setting (`kind:build
option=value:search option=v1,v2`) is built once per size and searched at each search value: recall@10 against
exact search (with the user vectors, and with `faiss_recall_at_k`'s pair-sum stand-ins that `build_catalog`
reports), single-user search p50 / p99 on one thread, batched users/s, and at the model's own size the p50 of the
whole one-user `rank_items` call (user tower + search + history exclusion).

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
from pathlib import Path


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


ANN_SETTINGS = (
    "flat",
    "ivf:nprobe=8,16,32,64",
    "ivfpq:pq_m=16:nprobe=16,64",
    "hnsw:hnsw_m=16:ef_search=16,32,64,128",
    "hnsw:hnsw_m=32:ef_search=16,32,64,128",
)
SEARCH_OPTIONS = ("nprobe", "ef_search")


def parse_setting(text: str) -> tuple[str, dict[str, int], str | None, list[int]]:
    """`kind:build_option=value:search_option=v1,v2` -> `(kind, build options, search option, search values)`."""
    kind, *parts = text.split(":")
    build, search, values = {}, None, [None]
    for part in parts:
        name, value = part.split("=")
        if name in SEARCH_OPTIONS:
            search, values = name, [int(v) for v in value.split(",")]
        else:
            build[name] = int(value)
    return kind, build, search, values


def trained_queries(args) -> tuple:
    """The trained model, its catalog vectors (padding row included), and histories + user vectors of up to
    `args.queries` test users with a non-empty history."""
    import random

    import torch

    from genrec_hf.commands._inference import load_model_and_processor
    from genrec_hf.data import load_prepared
    from genrec_hf.inference import ItemCatalog

    model, processor = load_model_and_processor(args.trained_model)
    catalog = ItemCatalog.from_model(model, processor)
    test = load_prepared(args.prepared).splits["test"]
    rows = [row for row, history in enumerate(test["history"][:]) if history]
    rows = sorted(random.Random(0).sample(rows, min(args.queries, len(rows))))
    histories = processor.pad_histories([h.item_ids for h in processor.index_histories(test.select(rows)["history"])])
    with torch.no_grad():
        _, users = model.encode_histories(histories["item_ids"], histories["attention_mask"].bool())
    return model, catalog.embeddings, histories, users


def repeated_with_noise(vectors, size: int, noise: float, seed: int = 0):
    """`vectors` tiled to `size` rows, every copy after the first moved by Gaussian noise of `noise` times each
    coordinate's standard deviation."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    tiled = vectors.repeat(-(-size // len(vectors)), 1)[:size].clone()
    spread = noise * vectors.std(dim=0)
    tiled[len(vectors) :] += torch.randn(size - len(vectors), vectors.shape[1], generator=generator) * spread
    return tiled


def build_ann(kind: str, vectors, options: dict):
    """A FAISS index of `kind` over `vectors`: the package's builder (`flat`, `ivf`, `hnsw`), or IVF-PQ (`pq_m`
    sub-quantizers of 8 bits, nlist as the package's IVF default) for comparison."""
    import math

    import faiss

    from genrec_hf.inference.faiss_index import build_faiss_index

    if kind != "ivfpq":
        return build_faiss_index(vectors, kind, **options)[0]
    data = vectors.float().contiguous().numpy()
    nlist = options.get("nlist") or max(1, min(int(4 * math.sqrt(len(data))), len(data) // 39))
    index = faiss.IndexIVFPQ(faiss.IndexFlatIP(data.shape[1]), data.shape[1], nlist, options["pq_m"], 8,
                             faiss.METRIC_INNER_PRODUCT)  # fmt: skip
    index.train(data)
    index.add(data)
    return index


def ann_worker(size: int, args) -> list[dict]:
    import faiss
    import torch

    from genrec_hf.inference import ItemCatalog, faiss_recall_at_k
    from genrec_hf.inference.faiss_index import set_search_parameters
    from genrec_hf.inference.recommender import rank_items

    torch.set_num_threads(1)
    model, embeddings, histories, users = trained_queries(args)
    own_size = len(embeddings) - 1
    vectors = embeddings[1:] if size in (0, own_size) else repeated_with_noise(embeddings[1:], size, args.noise)
    one_user = [(histories["item_ids"][i : i + 1], histories["attention_mask"][i : i + 1]) for i in range(len(users))]

    def single_search(search) -> list[float]:
        times = []
        for i in range(len(users)):
            query = users[i : i + 1]
            start = time.perf_counter()
            search(query)
            times.append(time.perf_counter() - start)
        return times

    exact = single_search(lambda q: torch.topk(q @ vectors.T, 10))
    rows = [{"size": len(vectors), "setting": "exact (torch matmul + topk)", "recall_users": 1.0, "recall_pairs": 1.0,
             "p50_ms": 1e3 * statistics.median(exact), "p99_ms": 1e3 * percentile(exact, 99)}]  # fmt: skip
    with torch.no_grad():
        tower = [_time(lambda ids=ids, mask=mask: model.encode_histories(ids, mask.bool())) for ids, mask in one_user]
    for setting in args.ann:
        kind, build, search, values = parse_setting(setting)
        faiss.omp_set_num_threads(args.threads or 1)
        start = time.perf_counter()
        index = build_ann(kind, vectors, build)
        build_s = time.perf_counter() - start
        catalog = ItemCatalog(embeddings, parent_asins=[], titles=[], index=index)
        for value in values:
            info = {search: value} if search else {}
            set_search_parameters(index, info)
            faiss.omp_set_num_threads(args.threads or 1)
            recall_users = faiss_recall_at_k(index, vectors, queries=users)
            recall_pairs = faiss_recall_at_k(index, vectors)
            batched = min(_time(lambda index=index: index.search(users.numpy(), 10)) for _ in range(3))
            faiss.omp_set_num_threads(1)
            single = single_search(lambda query, index=index: index.search(query.numpy(), 10))
            name = kind + "".join(f" {k}={v}" for k, v in {**build, **info}.items())
            row = {
                "size": len(vectors),
                "setting": name,
                "build_s": build_s,
                "recall_users": recall_users,
                "recall_pairs": recall_pairs,
                "p50_ms": 1e3 * statistics.median(single),
                "p99_ms": 1e3 * percentile(single, 99),
                "users_per_s": len(users) / batched,
                "user_tower_p50_ms": 1e3 * statistics.median(tower),
            }
            if len(vectors) == own_size:
                whole = [_time(lambda ids=ids, mask=mask, c=catalog: rank_items(model, ids, mask, 10, True, c))
                         for ids, mask in one_user]  # fmt: skip
                row["rank_items_p50_ms"] = 1e3 * statistics.median(whole)
            rows.append(row)
            print(f"  {row['size']} {name}: recall {recall_users:.3f}, p50 {row['p50_ms']:.3f} ms",
                  file=sys.stderr, flush=True)  # fmt: skip
    return rows


def _time(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def format_ann_table(rows: list[dict], args) -> str:
    lines = [
        "| items | index | build s | recall@10 (users) | recall@10 (pair queries) | search p50 ms | search p99 ms "
        "| batched users/s | rank_items p50 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['size']} | failed: {row['error']} |")
            continue
        build = f"{row['build_s']:.1f}" if "build_s" in row else ""
        batched = f"{row['users_per_s']:,.0f}" if "users_per_s" in row else ""
        whole = f"{row['rank_items_p50_ms']:.2f}" if "rank_items_p50_ms" in row else ""
        lines.append(
            f"| {row['size']:,} | {row['setting']} | {build} | {row['recall_users']:.3f} | {row['recall_pairs']:.3f} "
            f"| {row['p50_ms']:.3f} | {row['p99_ms']:.3f} | {batched} | {whole} |"
        )
    tower = next((row["user_tower_p50_ms"] for row in rows if "user_tower_p50_ms" in row), None)
    lines.append(
        f"\n{args.queries} test users with a history of `{args.trained_model}`; search on one thread (batched: "
        f"{args.threads or 1} thread(s)), k=10; larger catalogs repeat the trained vectors with noise {args.noise} x "
        f"each coordinate's std" + (f"; user tower p50 {tower:.2f} ms per user" if tower else "")
    )
    return "\n".join(lines)


def run_worker(size: int, dim: int, method: str, argv: list[str]) -> dict:
    rows = run_child(["--_worker", f"{size},{dim},{method}", *argv])
    return rows if "error" not in rows else {"size": size, "dim": dim, "method": method, **rows}


def run_child(argv: list[str]):
    """What a fresh worker process of this script prints last (JSON), or `{"error": ...}`."""
    completed = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True)
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1:]}
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
    parser.add_argument("--trained_model", help="Sweep FAISS settings on this trained model's item vectors.")
    parser.add_argument("--prepared", help="With --trained_model: its prepared data (test histories as queries).")
    parser.add_argument("--queries", type=int, default=1000, help="With --trained_model: test users searched.")
    parser.add_argument("--noise", type=float, default=0.1, help="With --trained_model: noise of repeated copies.")
    parser.add_argument("--ann", nargs="+", default=list(ANN_SETTINGS), help="With --trained_model: index settings.")
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    parser.add_argument("--_ann_worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        size, dim, method = args._worker.split(",")
        print(json.dumps(worker(int(size), int(dim), method, args)))
        return
    if args._ann_worker is not None:
        print(json.dumps(ann_worker(args._ann_worker, args)))
        return
    forwarded = list(argv if argv is not None else sys.argv[1:])
    if args.trained_model:
        rows = []
        for size in args.sizes:
            found = run_child(["--_ann_worker", str(size), *forwarded])
            rows += found if isinstance(found, list) else [{"size": size, **found}]
        print(format_ann_table(rows, args))
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))
        return
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

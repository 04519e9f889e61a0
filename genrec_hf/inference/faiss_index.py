"""FAISS indexes over catalog vectors (inner product): building, search settings, saving, and recall@k against exact
search. FAISS is an optional dependency (`pip install genrec_hf[faiss]`)."""

import math
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F

from ..ranking import top_k

FAISS_KINDS = ("none", "flat", "ivf", "hnsw")


def import_faiss():
    """The `faiss` module, or an `ImportError` saying how to install it."""
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "FAISS is not installed: `pip install genrec_hf[faiss]` (or `faiss-cpu`), or use exact search"
        ) from error
    return faiss


def build_faiss_index(
    vectors: torch.Tensor,
    kind: str = "flat",
    nlist: int | None = None,
    nprobe: int | None = None,
    hnsw_m: int = 32,
    ef_search: int = 128,
):
    """An inner-product FAISS index over `vectors` (rows of catalog items, padding excluded) and its settings.

    `flat` is exact; `ivf` clusters into `nlist` lists (default `4 sqrt(N)`, at least 39 training points per list)
    and searches `nprobe` of them; `hnsw` is a graph with `hnsw_m` links per node searched with `ef_search`.
    """
    if kind not in FAISS_KINDS[1:]:
        raise ValueError(f"faiss index kind must be one of {FAISS_KINDS[1:]}, got {kind!r}")
    faiss = import_faiss()
    data = vectors.detach().float().cpu().contiguous().numpy()
    count, dim = data.shape
    info = {"kind": kind}
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf":
        nlist = nlist or max(1, min(int(4 * math.sqrt(count)), count // 39))
        nprobe = min(nprobe or max(1, min(32, nlist // 4)), nlist)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(data)
        info.update(nlist=nlist, nprobe=nprobe)
    else:
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        info.update(hnsw_m=hnsw_m, ef_search=ef_search)
    index.add(data)
    set_search_parameters(index, info)
    return index, info


def set_search_parameters(index, info: Mapping) -> None:
    """Applies the search-time settings recorded in `info` (`nprobe`, `ef_search`) to `index`."""
    faiss = import_faiss()
    if "nprobe" in info:
        faiss.extract_index_ivf(index).nprobe = int(info["nprobe"])
    if "ef_search" in info:
        index.hnsw.efSearch = int(info["ef_search"])


def save_faiss_index(index, path: str | Path) -> None:
    import_faiss().write_index(index, str(path))


def load_faiss_index(path: str | Path, info: Mapping):
    """The index saved at `path`, with the search settings of `info` applied."""
    index = import_faiss().read_index(str(path))
    set_search_parameters(index, info)
    return index


def faiss_recall_at_k(
    index,
    vectors: torch.Tensor,
    k: int = 10,
    num_queries: int = 1000,
    seed: int = 0,
    queries: torch.Tensor | None = None,
) -> float:
    """Recall@k of `index` against exact inner-product search over `vectors` (the rows it indexes).

    `queries` are the user vectors to search with; without them, `num_queries` normalised sums of two random catalog
    vectors stand in for interest vectors between items. A returned item counts as a hit when its exact score reaches
    the k-th best exact score, so ties are not misses.
    """
    data = vectors.detach().float().cpu()
    k = min(k, len(data))
    if queries is None:
        generator = torch.Generator().manual_seed(seed)
        pairs = torch.randint(len(data), (num_queries, 2), generator=generator)
        queries = F.normalize(data[pairs[:, 0]] + data[pairs[:, 1]], dim=-1)
    queries = queries.detach().float().cpu().contiguous()
    # the k-th best exact score of each query: a found item that scores at least that well is a hit (ties count)
    rows = torch.arange(len(data)).expand(64, -1)
    kth = torch.cat([top_k(chunk @ data.T, k, rows[: len(chunk)])[1][:, -1] for chunk in queries.split(64)])
    _, found = index.search(queries.numpy(), k)
    found = torch.from_numpy(found)
    found_scores = (data[found.clamp(min=0)] * queries.unsqueeze(1)).sum(dim=-1)
    tolerance = 1e-5 * kth.abs().clamp(min=1)  # float32 rounding of large scores (trained vectors are not unit)
    hits = ((found >= 0) & (found_scores >= (kth - tolerance).unsqueeze(1))).sum()
    return float(hits) / (len(queries) * k)


__all__ = [
    "FAISS_KINDS",
    "build_faiss_index",
    "faiss_recall_at_k",
    "import_faiss",
    "load_faiss_index",
    "save_faiss_index",
    "set_search_parameters",
]

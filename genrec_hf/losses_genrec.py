"""InfoNCE losses of GenRec: full-catalog (chunked) and sampled (in-batch + uniform, log-Q corrected)."""

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .ranking import catalog_scores


def _chunk_cross_entropy_sum(queries: torch.Tensor, catalog: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(catalog_scores(queries, catalog), labels, reduction="sum")


def full_catalog_info_nce(
    queries: torch.Tensor, catalog: torch.Tensor, labels: torch.Tensor, chunk_size: int
) -> torch.Tensor:
    """Summed InfoNCE of `queries` (P, d) against every catalog row (N+1, d); the padding row is never a candidate.

    Positions are processed `chunk_size` at a time and each chunk's scores are recomputed in the backward pass, so
    memory stays at `chunk_size x (N+1)` scores whatever the batch.
    """
    if queries.shape[0] <= chunk_size or not torch.is_grad_enabled():
        chunks = [(queries, labels)]
    else:
        chunks = list(zip(queries.split(chunk_size), labels.split(chunk_size)))
    total = queries.new_zeros((), dtype=torch.float32)
    for query_chunk, label_chunk in chunks:
        if len(chunks) > 1:
            total = total + checkpoint(_chunk_cross_entropy_sum, query_chunk, catalog, label_chunk, use_reentrant=False)
        else:
            total = total + _chunk_cross_entropy_sum(query_chunk, catalog, label_chunk)
    return total


def sampling_log_q(
    candidate_ids: torch.Tensor,
    item_popularity: torch.Tensor,
    num_positions: int,
    num_uniform: int,
    num_items: int,
) -> torch.Tensor:
    """Log of the probability that each candidate enters the candidate set of a step.

    A candidate enters as the positive of one of `num_positions` positions (drawn with the training popularity) or
    as one of `num_uniform` uniform draws; the log-Q correction subtracts this from every score.
    """
    total = item_popularity.sum()
    if total > 0:
        item_prob = item_popularity[candidate_ids] / total
    else:
        item_prob = torch.full(candidate_ids.shape, 1.0 / num_items, device=candidate_ids.device)
    miss_in_batch = torch.exp(num_positions * torch.log1p(-item_prob.clamp(max=1 - 1e-6)))
    miss_uniform = max(0.0, 1.0 - num_uniform / num_items)
    return torch.log((1.0 - miss_in_batch * miss_uniform).clamp(min=1e-12))


def sampled_info_nce(
    queries: torch.Tensor,
    labels: torch.Tensor,
    candidate_ids: torch.Tensor,
    candidate_vectors: torch.Tensor,
    candidate_log_q: torch.Tensor,
) -> torch.Tensor:
    """Summed InfoNCE of `queries` (P, d) over a shared candidate set with the log-Q correction.

    `candidate_ids` (C,) are unique item indices that include every label; each query's own label is its positive
    and every other candidate is a negative, so an item equal to the positive is never counted as a negative.
    """
    logits = queries @ candidate_vectors.T - candidate_log_q
    targets = torch.searchsorted(candidate_ids, labels)
    return F.cross_entropy(logits.float(), targets, reduction="sum")


def gather_across_processes(values: torch.Tensor) -> torch.Tensor:
    """Concatenates a 1-D tensor from every process (any lengths), so in-batch negatives span all processes;
    identity without `torch.distributed`."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return values
    sizes = [torch.zeros((), dtype=torch.long, device=values.device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor(values.numel(), device=values.device))
    longest = int(max(sizes))
    padded = [values.new_zeros(longest) for _ in sizes]
    dist.all_gather(padded, F.pad(values, (0, longest - values.numel())))
    return torch.cat([chunk[: int(size)] for chunk, size in zip(padded, sizes)])


__all__ = ["full_catalog_info_nce", "gather_across_processes", "sampled_info_nce", "sampling_log_q"]

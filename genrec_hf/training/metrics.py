"""Full-ranking leave-one-out metrics (HR@K, NDCG@K, MRR) with bootstrap confidence intervals, in pure torch.

Every function here ranks a target among the whole catalog. Ties are resolved by their expectation under random
tie-breaking: with `h` items scoring strictly higher than the target and `t` other items scoring exactly as high,

    rank = h + 1 + t / 2

which is unbiased, unlike the optimistic `h + 1` (a model scoring everything equally would rank first). Ranks are
therefore float tensors, and a tied rank such as 2.5 enters HR@K and NDCG@K as it is.
"""

from collections.abc import Sequence

import torch


def _expected_rank(higher: torch.Tensor, tied: torch.Tensor) -> torch.Tensor:
    """`higher + 1 + tied / 2`: the mean rank when the target and its `tied` competitors are ordered at random."""
    return (higher + 1).float() + tied.float() / 2


def rank_of_targets(scores: torch.Tensor, targets: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Float 1-based rank of each target among the scored items (ties: see the module docstring).

    Args:
        scores (`torch.Tensor` of shape `(batch, num_items)`):
            Score of every item for every example; higher is better.
        targets (`torch.Tensor` of shape `(batch,)`):
            Column of each example's target.
        exclude (`torch.Tensor` of shape `(batch, num_items)`, *optional*):
            Boolean mask of items removed from the ranking (set to `-inf`), such as padding or history items.
            The target column is never removed, even when the mask covers it (a target already in the history).
    """
    targets = targets[:, None]
    if exclude is not None:
        exclude = exclude.scatter(1, targets, False)
        scores = scores.masked_fill(exclude, float("-inf"))
    target_scores = scores.gather(1, targets)
    higher = (scores > target_scores).sum(dim=1)
    tied = (scores == target_scores).sum(dim=1) - 1
    return _expected_rank(higher, tied)


@torch.no_grad()
def ranks_from_embeddings(
    queries: torch.Tensor,
    catalog: torch.Tensor,
    targets: torch.Tensor,
    exclude_indices: list[list[int]] | None = None,
    chunk_size: int = 65536,
) -> torch.Tensor:
    """[`rank_of_targets`] for dot-product scores `queries @ catalog.T`, computed over catalog chunks.

    Memory stays at `batch x chunk_size` scores, whatever the catalog size. The target scores are computed first,
    then each chunk adds its items scoring higher than, or tied with, the target (the target's own column is skipped).
    Chunking can change the last bits of a score, so two items with bit-identical dense scores may stop tying.

    Args:
        queries (`torch.Tensor` of shape `(batch, dim)`): Query (user) vectors.
        catalog (`torch.Tensor` of shape `(num_items, dim)`): Item vectors; row `i` scores item `i`.
        targets (`torch.Tensor` of shape `(batch,)`): Row of each query's target.
        exclude_indices (`list[list[int]]`, *optional*):
            Per query, the rows removed from the ranking (padding, history). The target is never removed.
        chunk_size (`int`, *optional*, defaults to 65536): Catalog rows scored at once.
    """
    device = catalog.device
    targets = targets.to(device)
    target_scores = (queries * catalog[targets]).sum(dim=1, keepdim=True)
    # (row, column) pairs skipped in the chunks: each target's own column, then the excluded items.
    rows = torch.arange(len(queries), device=device)
    cols = targets
    if exclude_indices is not None:
        lengths = torch.tensor([len(indices) for indices in exclude_indices], device=device)
        flat = torch.tensor([i for indices in exclude_indices for i in indices], dtype=torch.long, device=device)
        rows, cols = torch.cat([rows, rows.repeat_interleave(lengths)]), torch.cat([cols, flat])
    higher = torch.zeros(len(queries), dtype=torch.long, device=device)
    tied = torch.zeros_like(higher)
    for start in range(0, len(catalog), chunk_size):
        scores = queries @ catalog[start : start + chunk_size].T
        in_chunk = (cols >= start) & (cols < start + scores.shape[1])
        scores[rows[in_chunk], cols[in_chunk] - start] = float("-inf")
        higher += (scores > target_scores).sum(dim=1)
        tied += (scores == target_scores).sum(dim=1)
    return _expected_rank(higher, tied)


def per_user_metrics(ranks: torch.Tensor, ks: Sequence[int] = (5, 10, 20)) -> dict[str, torch.Tensor]:
    """Per-example `hr@K`, `ndcg@K` (`1 / log2(rank + 1)` when `rank <= K`, else 0) and `mrr` (`1 / rank`)."""
    ranks = ranks.double()
    gains = 1 / torch.log2(ranks + 1)
    metrics = {}
    for k in ks:
        hit = ranks <= k
        metrics[f"hr@{k}"] = hit.double()
        metrics[f"ndcg@{k}"] = torch.where(hit, gains, 0.0)
    metrics["mrr"] = 1 / ranks
    return metrics


def ranking_metrics(ranks: torch.Tensor, ks: Sequence[int] = (5, 10, 20)) -> dict[str, float]:
    """Means of [`per_user_metrics`] over the examples (NaN when `ranks` is empty)."""
    return {name: values.mean().item() for name, values in per_user_metrics(ranks, ks).items()}


def bootstrap_ci(
    per_user: torch.Tensor, num_samples: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap `(1 - alpha)` confidence interval of the mean of `per_user` (NaNs when it is empty)."""
    if len(per_user) == 0:
        return float("nan"), float("nan")
    generator = torch.Generator().manual_seed(seed)
    values = per_user.double().cpu()
    samples_per_step = max(1, 2**22 // len(values))  # bounds the resampled indices to ~4M at a time
    means = []
    for start in range(0, num_samples, samples_per_step):
        size = min(samples_per_step, num_samples - start)
        means.append(values[torch.randint(len(values), (size, len(values)), generator=generator)].mean(dim=1))
    low, high = torch.quantile(torch.cat(means), torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.double))
    return low.item(), high.item()


def metrics_with_ci(
    ranks: torch.Tensor,
    ks: Sequence[int] = (5, 10, 20),
    num_samples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Every metric as `{"value", "ci_low", "ci_high"}`; an empty `ranks` (such as an empty group) gives `{}`.

    All metrics share the same bootstrap resamples (same `seed`), so their intervals are paired.
    """
    if len(ranks) == 0:
        return {}
    results = {}
    for name, values in per_user_metrics(ranks, ks).items():
        low, high = bootstrap_ci(values, num_samples=num_samples, alpha=alpha, seed=seed)
        results[name] = {"value": values.mean().item(), "ci_low": low, "ci_high": high}
    return results


def split_by_mask(ranks: torch.Tensor, is_warm: torch.Tensor) -> dict[str, torch.Tensor]:
    """`{"warm": ..., "cold": ...}` ranks, for targets seen in training (`is_warm`) and unseen ones.

    A group may be empty; its metrics are then `{}` from [`metrics_with_ci`] and its count `len(...) == 0`.
    """
    is_warm = is_warm.bool()
    return {"warm": ranks[is_warm], "cold": ranks[~is_warm]}


def popularity_scores(train_item_counts: torch.Tensor) -> torch.Tensor:
    """Training interaction counts as float scores, indexed by item id; column 0 (padding) is `-inf`."""
    scores = train_item_counts.float().clone()
    scores[0] = float("-inf")
    return scores


def popularity_ranks(
    train_item_counts: torch.Tensor, targets: torch.Tensor, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """Ranks of `targets` under the popularity baseline, from the same [`rank_of_targets`] as the model.

    Args:
        train_item_counts (`torch.Tensor` of shape `(num_items + 1,)`):
            Training interactions per item id; index 0 is padding and never ranked.
        targets (`torch.Tensor` of shape `(batch,)`): Target item ids.
        exclude (`torch.Tensor` of shape `(batch, num_items + 1)`, *optional*): As in [`rank_of_targets`].
    """
    scores = popularity_scores(train_item_counts).to(targets.device)
    return rank_of_targets(scores.expand(len(targets), -1), targets, exclude)

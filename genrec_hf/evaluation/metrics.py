"""Leave-one-out metrics (HR@K, NDCG@K, MRR) from full-catalog target ranks, with bootstrap confidence intervals.

The pure-torch source of truth of every metric in genrec_hf (the `evaluate` module in `ranking/` wraps it). Ranks
come from `genrec_hf.ranking` (floats: ties count as their expected rank under random tie-breaking).
"""

from collections.abc import Sequence

import torch


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
    low, high = bootstrap_cis(per_user[:, None], num_samples=num_samples, alpha=alpha, seed=seed)
    return low[0].item(), high[0].item()


def bootstrap_cis(
    per_user: torch.Tensor, num_samples: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Percentile bootstrap `(1 - alpha)` confidence intervals `(low, high)` of the mean of every column of `per_user`
    `(users, metrics)`, all from the same resamples of the users (NaNs when there are none)."""
    if len(per_user) == 0:
        nan = torch.full((per_user.shape[1],), float("nan"), dtype=torch.double)
        return nan, nan
    generator = torch.Generator().manual_seed(seed)
    values = per_user.double().cpu()
    users = len(values)
    samples_per_step = max(1, 2**22 // users)  # bounds the resampled indices to ~4M at a time
    means = []
    for start in range(0, num_samples, samples_per_step):
        size = min(samples_per_step, num_samples - start)
        drawn = torch.randint(users, (size, users), generator=generator)
        # how often each user is drawn, then one matrix product for every metric (8x faster than gathering values)
        counts = torch.zeros(size, users, dtype=torch.double).scatter_add_(1, drawn, torch.ones_like(drawn).double())
        means.append(counts @ values / users)
    levels = torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.double)
    low, high = torch.quantile(torch.cat(means), levels, dim=0)
    return low, high


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
    per_user = per_user_metrics(ranks, ks)
    low, high = bootstrap_cis(torch.stack(list(per_user.values()), dim=1), num_samples, alpha, seed)
    return {
        name: {"value": values.mean().item(), "ci_low": low[i].item(), "ci_high": high[i].item()}
        for i, (name, values) in enumerate(per_user.items())
    }


def split_by_mask(ranks: torch.Tensor, is_warm: torch.Tensor) -> dict[str, torch.Tensor]:
    """`{"warm": ..., "cold": ...}` ranks, for targets seen in training (`is_warm`) and unseen ones.

    A group may be empty; its metrics are then `{}` from [`metrics_with_ci`] and its count `len(...) == 0`.
    """
    is_warm = is_warm.bool()
    return {"warm": ranks[is_warm], "cold": ranks[~is_warm]}

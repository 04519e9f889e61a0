"""Final test report: metrics with bootstrap confidence intervals, warm/cold items, and a popularity baseline."""

import torch
from datasets import Dataset

from ..processing_genrec import GenRecProcessor
from ..ranking import history_mask
from .metrics import metrics_with_ci, popularity_ranks, ranking_metrics
from .trainer import GenRecTrainer


def popularity_baseline_ranks(
    examples: Dataset, item_counts: torch.Tensor, exclude_history: bool, batch_size: int = 1024
) -> torch.Tensor:
    """Ranks of each example's target when items are ranked by training popularity (same rank function)."""
    counts = torch.cat([torch.zeros(1), item_counts.float()])
    ranks = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        exclude = None
        if exclude_history:
            padded = GenRecProcessor.pad_histories(batch["item_ids"])["item_ids"]
            exclude = history_mask(padded, len(counts))
        ranks.append(popularity_ranks(counts, torch.tensor(batch["target_id"]), exclude))
    return torch.cat(ranks)


def evaluation_report(
    trainer: GenRecTrainer,
    valid: Dataset,
    test: Dataset,
    item_counts: torch.Tensor,
    bootstrap_samples: int = 1000,
    seed: int = 0,
) -> dict:
    """Valid metrics, test metrics with 95% CIs, the warm/cold split of test and the popularity baseline.

    A test target is warm when the item occurs in the training sequences (`item_counts > 0`), cold otherwise.
    """
    ks = trainer.metric_ks
    valid_ranks, _ = trainer.rank_targets(trainer.get_eval_dataloader(valid))
    test_ranks, _ = trainer.rank_targets(trainer.get_eval_dataloader(test))
    warm = item_counts[torch.tensor(test["target_id"]) - 1] > 0

    def with_ci(ranks: torch.Tensor) -> dict:
        return metrics_with_ci(ranks, ks, num_samples=bootstrap_samples, seed=seed) if len(ranks) else {}

    exclude = trainer.exclude_history
    return {
        "valid": ranking_metrics(valid_ranks, ks),
        "test": with_ci(test_ranks),
        "test_warm": {"count": int(warm.sum()), **with_ci(test_ranks[warm])},
        "test_cold": {"count": int((~warm).sum()), **with_ci(test_ranks[~warm])},
        "popularity": {
            "valid": ranking_metrics(popularity_baseline_ranks(valid, item_counts, exclude), ks),
            "test": with_ci(popularity_baseline_ranks(test, item_counts, exclude)),
        },
    }

"""Full-ranking metrics against hand-computed ranks, the chunked ranker, bootstrap CIs, popularity and `evaluate`."""

import math
from pathlib import Path

import pytest
import torch

import genrec_hf
from genrec_hf.evaluation.metrics import (
    bootstrap_ci,
    bootstrap_cis,
    metrics_with_ci,
    per_user_metrics,
    ranking_metrics,
    split_by_mask,
)
from genrec_hf.ranking import (
    PAD_ROW,
    history_mask,
    popularity_scores,
    rank_of_targets,
    ranks_from_embeddings,
    shared_score_ranks,
)

INF = float("inf")


def test_rank_counts_ties_as_their_expected_rank():
    scores = torch.tensor([[-INF, 3.0, 5.0, 5.0, 5.0, 1.0], [-INF, 3.0, 5.0, 5.0, 5.0, 1.0]])
    ranks = rank_of_targets(scores, torch.tensor([2, 5]))
    # target 2 ties with items 3 and 4: positions 1..3 equally likely -> 2; target 5 has 4 items above it -> 5
    assert ranks.tolist() == [2.0, 5.0]
    assert ranks.dtype == torch.float32


def test_exclude_removes_items_but_never_the_target():
    scores = torch.tensor([[10.0, 0.9, 0.8, 0.7, 0.6]])  # column 0 (padding) scores highest unless excluded
    target = torch.tensor([3])
    pad_only = torch.tensor([[True, False, False, False, False]])
    history = torch.tensor([[True, True, False, False, False]])
    target_in_history = torch.tensor([[True, True, False, True, False]])
    assert rank_of_targets(scores, target).item() == 4.0
    assert rank_of_targets(scores, target, pad_only).item() == 3.0
    assert rank_of_targets(scores, target, history).item() == 2.0
    assert rank_of_targets(scores, target, target_in_history).item() == 2.0
    assert target_in_history[0, 3].item()  # the caller's mask is left untouched


def test_metrics_of_three_users_by_hand():
    metrics = ranking_metrics(torch.tensor([1.0, 3.0, 12.0]), ks=(5, 10, 20))
    expected = {
        "hr@5": 2 / 3,
        "ndcg@5": (1 + 1 / math.log2(4)) / 3,
        "hr@10": 2 / 3,
        "ndcg@10": (1 + 1 / math.log2(4)) / 3,
        "hr@20": 1.0,
        "ndcg@20": (1 + 1 / math.log2(4) + 1 / math.log2(13)) / 3,
        "mrr": (1 + 1 / 3 + 1 / 12) / 3,
    }
    assert metrics.keys() == expected.keys()
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value), name


def test_tied_float_rank_enters_metrics_as_is():
    metrics = per_user_metrics(torch.tensor([2.5]), ks=(2, 3))
    assert metrics["hr@2"].item() == 0.0
    assert metrics["hr@3"].item() == 1.0
    assert metrics["ndcg@3"].item() == pytest.approx(1 / math.log2(3.5))
    assert metrics["mrr"].item() == pytest.approx(0.4)


def test_bootstrap_ci_contains_the_mean_and_narrows_with_more_users():
    generator = torch.Generator().manual_seed(0)
    small = torch.bernoulli(torch.full((100,), 0.3), generator=generator)
    large = torch.bernoulli(torch.full((10_000,), 0.3), generator=generator)
    low_small, high_small = bootstrap_ci(small, num_samples=500, seed=1)
    low_large, high_large = bootstrap_ci(large, num_samples=500, seed=1)
    assert low_small < small.mean().item() < high_small
    assert low_large < large.mean().item() < high_large
    assert high_large - low_large < (high_small - low_small) / 5  # width ~ 1/sqrt(n): 10x narrower
    assert bootstrap_ci(small, num_samples=500, seed=1) == (low_small, high_small)


def test_bootstrap_cis_are_percentiles_of_paired_resample_means():
    """Every metric's interval comes from the same resamples of the users: the percentiles of the means of
    `values[drawn]` for the seeded draws, as a direct gather computes them."""
    generator = torch.Generator().manual_seed(3)
    values = torch.rand(50, 3, generator=generator, dtype=torch.double)
    drawn = torch.randint(50, (200, 50), generator=torch.Generator().manual_seed(7))
    expected = torch.quantile(values[drawn].mean(dim=1), torch.tensor([0.05, 0.95], dtype=torch.double), dim=0)
    low, high = bootstrap_cis(values, num_samples=200, alpha=0.1, seed=7)
    torch.testing.assert_close(torch.stack([low, high]), expected, rtol=0, atol=1e-12)


def test_metrics_with_ci_matches_point_metrics_and_handles_empty_groups():
    ranks = torch.tensor([1.0, 2.5, 7.0, 40.0, 3.0, 1.0])
    with_ci = metrics_with_ci(ranks, ks=(5, 10), num_samples=200)
    for name, value in ranking_metrics(ranks, ks=(5, 10)).items():
        assert with_ci[name]["value"] == pytest.approx(value)
        assert with_ci[name]["ci_low"] <= value <= with_ci[name]["ci_high"]
    groups = split_by_mask(ranks, torch.ones(6, dtype=torch.bool))
    assert groups["warm"].tolist() == ranks.tolist()
    assert len(groups["cold"]) == 0
    assert metrics_with_ci(groups["cold"]) == {}


def test_split_by_mask_separates_warm_and_cold():
    groups = split_by_mask(torch.tensor([1.0, 5.0, 9.0]), torch.tensor([True, False, True]))
    assert groups["warm"].tolist() == [1.0, 9.0]
    assert groups["cold"].tolist() == [5.0]


@pytest.mark.parametrize("integer_scores", [False, True], ids=["random", "integer-ties"])
def test_chunked_ranks_equal_dense_ranks(integer_scores):
    generator = torch.Generator().manual_seed(0)
    batch, num_items, dim = 24, 103, 8
    if integer_scores:  # small integers keep every dot product exact, so ties are plentiful and order-independent
        queries = torch.randint(-2, 3, (batch, 4), generator=generator).float()
        catalog = torch.randint(-2, 3, (num_items, 4), generator=generator).float()
    else:
        queries, catalog = (
            torch.randn(batch, dim, generator=generator),
            torch.randn(num_items, dim, generator=generator),
        )
    targets = torch.randint(1, num_items, (batch,), generator=generator)
    exclude_indices = [[0] + torch.randint(1, num_items, (i % 5,), generator=generator).tolist() for i in range(batch)]
    exclude_indices[0].append(targets[0].item())  # a target inside its own history stays ranked
    exclude = torch.zeros(batch, num_items, dtype=torch.bool)
    for row, indices in enumerate(exclude_indices):
        exclude[row, indices] = True
    dense = rank_of_targets(queries @ catalog.T, targets, exclude)
    if integer_scores:
        assert (dense % 1 != 0).any()  # the data really has ties with the target
    for chunk_size in (1, 10, 64, num_items, 1000):
        chunked = ranks_from_embeddings(queries, catalog, targets, exclude_indices, chunk_size=chunk_size)
        assert torch.equal(chunked, dense), chunk_size
    unfiltered = ranks_from_embeddings(queries, catalog, targets, chunk_size=10)
    assert torch.equal(unfiltered, rank_of_targets(queries @ catalog.T, targets))


@pytest.mark.parametrize("with_histories", [False, True], ids=["all-items", "history-excluded"])
def test_shared_score_ranks_equal_the_score_matrix_ranks(with_histories):
    """Ranking every example by one shared vector (popularity) from its sorted scores gives `rank_of_targets`' ranks:
    ties, padding, cold items (count 0), repeated history items and a target inside its own history included."""
    generator = torch.Generator().manual_seed(0)
    batch, num_items = 40, 60
    scores = popularity_scores(torch.randint(0, 6, (num_items,), generator=generator).float())  # many ties
    targets = torch.randint(1, num_items, (batch,), generator=generator)
    item_ids = torch.randint(1, num_items, (batch, 7), generator=generator)
    item_ids[:, 5:] = PAD_ROW  # right padding
    item_ids[0, 1] = item_ids[0, 2] = item_ids[0, 0]  # one item three times in a history
    item_ids[1, 0] = targets[1]  # the target inside its own history stays ranked
    exclude = history_mask(item_ids, num_items) if with_histories else None
    expected = rank_of_targets(scores.expand(batch, -1), targets, exclude)
    assert (expected % 1 != 0).any()  # the data really has ties with the target
    fast = shared_score_ranks(scores, targets, item_ids if with_histories else None)
    assert torch.equal(fast, expected)
    presorted = shared_score_ranks(scores, targets, item_ids if with_histories else None, scores.sort().values)
    assert torch.equal(presorted, expected)  # callers ranking many batches sort once


def test_popularity_baseline_on_a_toy_catalog():
    counts = torch.tensor([100.0, 5.0, 2.0, 9.0, 2.0])  # index 0 is padding: its count is ignored
    assert popularity_scores(counts).tolist() == [-INF, 5.0, 2.0, 9.0, 2.0]
    targets = torch.tensor([1, 2, 2])
    histories = torch.tensor([[PAD_ROW], [PAD_ROW], [3]])
    # item 1: only item 3 above -> 2; item 2: items 1, 3 above, tied with 4 -> 3.5; item 3 excluded -> 2.5
    assert shared_score_ranks(popularity_scores(counts), targets, histories).tolist() == [2.0, 3.5, 2.5]
    assert counts[0].item() == 100.0


def test_evaluate_module_loads_offline_and_matches_torch():
    evaluate = pytest.importorskip("evaluate")
    module = evaluate.load(str(Path(genrec_hf.__file__).parent / "evaluation" / "ranking"))
    ranks = [1.0, 2.5, 7.0, 40.0, 3.0]
    expected = ranking_metrics(torch.tensor(ranks), ks=(1, 10))
    assert module.compute(ranks=ranks, ks=(1, 10)) == pytest.approx(expected)

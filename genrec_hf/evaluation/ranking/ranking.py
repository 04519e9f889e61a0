"""`evaluate` wrapper around `genrec_hf.evaluation.metrics.ranking_metrics`.

Load it offline with `evaluate.load("<path to this folder>")`.
"""

import datasets
import evaluate
import torch

from genrec_hf.evaluation.metrics import ranking_metrics

_DESCRIPTION = """
Leave-one-out full-ranking metrics from the 1-based rank of each example's target among the whole catalog:
HR@K = mean(rank <= K), NDCG@K = mean(1 / log2(rank + 1) if rank <= K else 0), MRR = mean(1 / rank).
Ranks are floats so that ties can count as their expected rank under random tie-breaking.
"""

_KWARGS_DESCRIPTION = """
Args:
    ranks (`list[float]`): 1-based rank of each example's target, e.g. from `rank_of_targets`.
    ks (`Sequence[int]`, *optional*, defaults to `(5, 10, 20)`): Cut-offs of HR@K and NDCG@K.
Returns:
    `dict[str, float]` with `hr@K`, `ndcg@K` for every K, and `mrr`.
Examples:
    >>> ranking = evaluate.load("genrec_hf/evaluation/ranking")
    >>> ranking.compute(ranks=[1, 3, 12], ks=[10])
    {'hr@10': 0.6666666666666666, 'ndcg@10': 0.5, 'mrr': 0.47222222222222215}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Ranking(evaluate.Metric):
    """HR@K, NDCG@K and MRR from target ranks."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"ranks": datasets.Value("float64")}),
        )

    def _compute(self, ranks: list[float], ks: tuple[int, ...] = (5, 10, 20)) -> dict[str, float]:
        return ranking_metrics(torch.tensor(ranks, dtype=torch.float64), ks)

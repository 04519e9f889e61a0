"""Evaluation: full-ranking metrics with confidence intervals, `EvaluationReport` (the typed `metrics.json`) and an
evaluator that needs no Trainer. Knows nothing of training, inference or the Hub.

The offline `evaluate` module lives in `ranking/`: `evaluate.load(".../genrec_hf/evaluation/ranking")`.
"""

from .evaluator import RankingEvaluator, collate_examples, example_batches, popularity_baseline_ranks
from .metrics import bootstrap_ci, metrics_with_ci, per_user_metrics, ranking_metrics, split_by_mask
from .report import (
    METRICS_FILE,
    BaselineMetrics,
    DataSummary,
    Estimate,
    EvaluationProtocol,
    EvaluationReport,
    GroupMetrics,
    ModelSummary,
    TrainingSummary,
    as_report,
)

__all__ = [
    "METRICS_FILE",
    "BaselineMetrics",
    "DataSummary",
    "Estimate",
    "EvaluationProtocol",
    "EvaluationReport",
    "GroupMetrics",
    "ModelSummary",
    "RankingEvaluator",
    "TrainingSummary",
    "as_report",
    "bootstrap_ci",
    "collate_examples",
    "example_batches",
    "metrics_with_ci",
    "per_user_metrics",
    "popularity_baseline_ranks",
    "ranking_metrics",
    "split_by_mask",
]

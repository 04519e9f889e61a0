"""`EvaluationReport` (the typed metrics.json) and the Trainer-free `RankingEvaluator`."""

import dataclasses
import json
import random
from pathlib import Path
from unittest import mock

import pytest
import torch
from conftest import TINY, build_tiny_model
from datasets import Dataset
from transformers import TrainingArguments

from genrec_hf import GenRecConfig
from genrec_hf.evaluation import (
    METRICS_FILE,
    Estimate,
    EvaluationProtocol,
    EvaluationReport,
    RankingEvaluator,
    as_report,
)
from genrec_hf.evaluation.evaluator import example_batches, scored_batches
from genrec_hf.ranking import history_mask, rank_of_targets
from genrec_hf.training import GenRecTrainer, SequenceCollator

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def run_metrics() -> dict:
    """A metrics.json as scripts/train.py writes it, with an empty cold group."""

    def ci(value: float) -> dict:
        return {"value": value, "ci_low": value - 0.01, "ci_high": value + 0.02}

    return {
        "model": {"fusion": "id", "item_encoder": None, "item_encoder_type": "text"},
        "data": {"name": "Beauty", "split": "leave_one_out", "stats": {"users": 3, "rows": {"test": 3}}},
        "protocol": {
            "ranking": "full catalog",
            "exclude_history": True,
            "ties": "expected rank under random tie-breaking",
            "ci": "95% percentile bootstrap over users (20 resamples)",
        },
        "valid": {"hr@10": 0.5, "ndcg@10": 0.25, "mrr": 0.2},
        "test": {"hr@10": ci(0.4), "ndcg@10": ci(0.2), "mrr": ci(0.1)},
        "test_warm": {"count": 3, "hr@10": ci(0.4), "ndcg@10": ci(0.2), "mrr": ci(0.1)},
        "test_cold": {"count": 0},
        "popularity": {
            "valid": {"hr@10": 0.1, "ndcg@10": 0.05, "mrr": 0.03},
            "test": {"hr@10": ci(0.05), "ndcg@10": ci(0.03), "mrr": ci(0.02)},
        },
        "training": {"epochs": 2.0, "global_step": 4, "train_runtime_s": 1.25, "seed": 42, "best_checkpoint": None},
    }


def test_report_round_trips_metrics_json_exactly(tmp_path):
    metrics = run_metrics()
    report = EvaluationReport.from_dict(metrics)
    assert report.test["ndcg@10"] == Estimate(0.2, 0.2 - 0.01, 0.2 + 0.02)
    assert report.test_cold.count == 0 and report.test_cold.metrics == {}
    assert report.protocol.exclude_history is True and report.training.best_checkpoint is None
    assert json.dumps(report.to_dict()) == json.dumps(metrics)  # same keys, same order, same numbers

    path = report.save(tmp_path)
    assert path == tmp_path / METRICS_FILE
    assert json.loads(path.read_text()) == metrics
    assert EvaluationReport.load(tmp_path) == EvaluationReport.load(path) == report
    assert as_report(tmp_path) == as_report(metrics) == as_report(report) == report
    assert as_report(None) is None
    (tmp_path / "untrained").mkdir()
    assert as_report(tmp_path / "untrained") is None

    with pytest.raises(ValueError, match="unknown sections"):
        EvaluationReport.from_dict({**metrics, "tset": {}})


def test_evaluation_only_report_leaves_out_the_run_sections():
    metrics = {k: v for k, v in run_metrics().items() if k not in ("model", "data", "protocol", "training")}
    report = EvaluationReport.from_dict(metrics)
    assert report.model is report.data is report.protocol is report.training is None
    assert report.to_dict() == metrics
    assert "split not recorded" in report.format_summary()


@pytest.mark.skipif(not RESULTS.is_dir(), reason="benchmarks/results is absent")
def test_every_report_under_benchmarks_results_round_trips():
    reports = 0
    for path in sorted(RESULTS.glob("*/*.json")):
        result = json.loads(path.read_text())
        for metrics in [result.get("train_main_metrics"), *result.get("protocols", {}).values()]:
            if metrics is not None:
                assert EvaluationReport.from_dict(metrics).to_dict() == metrics, path
                reports += 1
    assert reports > 0


def test_format_summary_is_the_test_table_beside_popularity():
    report = EvaluationReport.from_dict(run_metrics())
    lines = report.format_summary().splitlines()
    assert lines[0] == "Test metrics (leave_one_out, full-catalog ranking, history excluded, 3 users)"
    assert lines[2].split() == ["hr@10", "0.4000", "[0.3900,", "0.4200]", "0.0500", "[0.0400,", "0.0700]"]
    assert len(lines) == 2 + len(report.test)


def test_protocol_names_the_bootstrap():
    protocol = EvaluationProtocol.full_ranking(exclude_history=False, bootstrap_samples=200)
    assert protocol.to_dict() == {
        "ranking": "full catalog",
        "exclude_history": False,
        "ties": "expected rank under random tie-breaking",
        "ci": "95% percentile bootstrap over users (200 resamples)",
    }


def examples(num_rows: int, seed: int) -> Dataset:
    rng = random.Random(seed)
    lengths = [rng.randint(1, TINY["max_seq_len"]) for _ in range(num_rows)]
    histories = [[rng.randint(1, TINY["num_items"]) for _ in range(length)] for length in lengths]
    targets = [rng.randint(1, TINY["num_items"]) for _ in range(num_rows)]
    return Dataset.from_dict({"item_ids": histories, "target_id": targets, "length": [len(h) for h in histories]})


@pytest.mark.parametrize("exclude_history", [False, True])
def test_empty_histories_rank_and_score_as_the_full_score_matrix_does(exclude_history):
    """Rows without a history are ranked from the model's popularity fallback directly, in place (batch order kept),
    with the ranks and losses a full `(rows, num_items + 1)` score matrix gives them."""
    model = build_tiny_model(GenRecConfig(**TINY))
    model.set_item_popularity(torch.arange(TINY["num_items"]) % 5)  # ties, and items never seen in training
    rows = examples(29, seed=2)
    histories = [h if i % 3 else [] for i, h in enumerate(rows["item_ids"])]  # every third history empty
    lengths = [len(history) for history in histories]
    rows = Dataset.from_dict({"item_ids": histories, "target_id": rows["target_id"][:], "length": lengths})
    evaluator = RankingEvaluator(exclude_history=exclude_history, batch_size=4)

    ranks, losses = evaluator.rank(model, rows)

    expected_ranks, expected_losses = [], []
    for batch, scores in scored_batches(model, example_batches(rows, 4)):
        exclude = history_mask(batch["item_ids"], scores.shape[1]) if exclude_history else None
        expected_ranks.append(rank_of_targets(scores, batch["labels"], exclude))
        target_scores = scores.gather(1, batch["labels"][:, None]).squeeze(1)
        expected_losses.append(torch.logsumexp(scores[:, 1:], dim=1) - target_scores)
    assert torch.equal(ranks, torch.cat(expected_ranks))
    torch.testing.assert_close(losses, torch.cat(expected_losses))


@pytest.mark.parametrize("exclude_history", [False, True])
def test_evaluator_without_a_trainer_equals_the_trainer(tmp_path, exclude_history):
    model = build_tiny_model(GenRecConfig(**TINY)).train()
    valid, test = examples(23, seed=0), examples(31, seed=1)
    counts = torch.arange(TINY["num_items"]) % 4  # a quarter of the items unseen in training: cold targets
    args = TrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, per_device_eval_batch_size=7, report_to="none",
        remove_unused_columns=False, disable_tqdm=True, dataloader_pin_memory=False,
    )  # fmt: skip
    trainer = GenRecTrainer(
        model=model, args=args, data_collator=SequenceCollator(), exclude_history=exclude_history, bootstrap_samples=30
    )
    evaluator = RankingEvaluator(exclude_history=exclude_history, batch_size=7, bootstrap_samples=30, seed=args.seed)

    alone = evaluator.evaluate(model, valid)
    assert {"hr@10", "ndcg@10", "mrr", "loss"} <= set(alone)
    through_trainer = trainer.evaluate(valid)
    for name, value in alone.items():
        assert through_trainer[f"eval_{name}"] == pytest.approx(value, abs=1e-9), name

    report = evaluator.report(model, valid, test, counts)
    assert report.to_dict() == trainer.evaluation_report(valid, test, counts).to_dict()
    assert report.protocol.exclude_history is exclude_history
    assert report.test_warm.count + report.test_cold.count == len(test)
    assert 0 < report.test_cold.count < len(test)
    assert model.training, "evaluation leaves the model in the mode it found it in"


@pytest.mark.parametrize("exclude_history", [False, True])
def test_a_report_carries_the_other_protocol_scored_once(tmp_path, exclude_history):
    """The final report also holds the other ranking protocol's numbers, from the same scores: equal to what an
    evaluator of that protocol reports, kept through `metrics.json`, and named in the summary."""
    model = build_tiny_model(GenRecConfig(**TINY)).eval()
    valid, test = examples(23, seed=0), examples(31, seed=1)
    counts = torch.arange(TINY["num_items"]) % 4
    evaluator = RankingEvaluator(exclude_history=exclude_history, batch_size=7, bootstrap_samples=30)
    other_evaluator = RankingEvaluator(exclude_history=not exclude_history, batch_size=7, bootstrap_samples=30)
    calls = []
    score_histories = model.score_histories

    def counted(*args, **kwargs):
        calls.append(1)
        return score_histories(*args, **kwargs)

    with mock.patch.object(model, "score_histories", side_effect=counted):
        report = evaluator.report(model, valid, test, counts)
        scored_for_report = len(calls)
        evaluator.rank(model, valid), evaluator.rank(model, test)  # one protocol
    assert scored_for_report == len(calls) - scored_for_report > 0  # both protocols cost one scoring pass

    other = other_evaluator.report(model, valid, test, counts)
    assert report.protocol.exclude_history is exclude_history
    assert report.other_protocol.to_dict() == dataclasses.replace(other, other_protocol=None).to_dict()
    assert report.other_protocol.test["ndcg@10"].value != report.test["ndcg@10"].value  # histories hold items
    assert EvaluationReport.load(report.save(tmp_path)).to_dict() == report.to_dict()
    assert report.other_protocol.protocol.name in report.format_summary()

"""The model card of a GenRec model, rendered from `templates/model_card_template.md` with the run's
`EvaluationReport`: every number it shows comes from the model's config or from the report."""

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .. import __version__
from ..configuration_genrec_generative import GenRecGenerativeConfig
from ..data.hub_files import AMAZON_REVIEWS_2023
from ..evaluation.report import (
    BaselineMetrics,
    Estimate,
    EvaluationReport,
    GroupMetrics,
    ReportSource,
    as_report,
)
from ..modeling_genrec import GenRecModel
from ..modeling_genrec_generative import GenRecForSemanticIDGeneration
from ..processing_genrec import GenRecProcessor

CARD_TEMPLATE = Path(__file__).parent / "templates" / "model_card_template.md"
PLACEHOLDER_REPO_ID = "<namespace>/<model-name>"
# report metric -> (model-index metric type, display name); HR@K equals Recall@K with one target per user.
HEADLINE_METRICS = {"hr@10": ("recall", "HR@10"), "ndcg@10": ("ndcg", "NDCG@10"), "mrr": ("mrr", "MRR")}
CARD_METRIC_TYPES = ["ndcg", "recall", "mrr"]
BASE_TAGS = ("genrec_hf", "sequential-recommendation", "recommendation")
# What the card shows of a model without a report: no data, protocol, results or training run.
_NO_REPORT = EvaluationReport(
    valid={}, test={}, test_warm=GroupMetrics(0), test_cold=GroupMetrics(0), popularity=BaselineMetrics({}, {})
)


def _fmt(number: float | None) -> str:
    """A metric for a table: 4 decimals; `–` when the run did not record it."""
    return "–" if number is None else f"{number:.4f}"


def _ci(estimate: Estimate | None) -> str:
    return "–" if estimate is None else f"[{_fmt(estimate.ci_low)}, {_fmt(estimate.ci_high)}]"


def _with_ci(estimate: Estimate | None) -> str:
    return "–" if estimate is None else f"{_fmt(estimate.value)} {_ci(estimate)}"


def _pairs(section: Mapping[str, Any], numbers_only: bool = False) -> list[tuple[str, str]]:
    """`(name, value)` rows of a flat record for a two-column table. Nested values are left out, and with
    `numbers_only` so are strings (the run's local paths, fingerprints)."""
    kinds = (int, float) if numbers_only else (int, float, str)
    rows = []
    for name, value in section.items():
        if isinstance(value, bool):
            rows.append((name.replace("_", " "), "yes" if value else "no"))
        elif isinstance(value, kinds):
            rows.append((name.replace("_", " "), f"{value:.6g}" if isinstance(value, float) else str(value)))
    return rows


def is_hub_model_id(name: str | None) -> bool:
    """Whether `name` is a Hub repo id (`org/name` or `name`) rather than a local folder."""
    if not name or Path(name).exists():
        return False
    try:
        validate_repo_id(name)  # rejects absolute, home-relative and dotted paths
    except HFValidationError:
        return False
    return True


def _hub_dataset(report: EvaluationReport | None) -> str | None:
    """The Hub dataset the training data was downloaded from (`--categories` or `hf://` paths), if one was."""
    stats = report.data.stats if report and report.data else {}
    repos = [repo.removeprefix("datasets/") for repo in stats.get("hub_datasets", []) if repo.startswith("datasets/")]
    return repos[0] if len(repos) == 1 else None


def _eval_results(
    test: Mapping[str, Estimate], dataset: str | None, data_name: str | None, protocol: str | None
) -> list[EvalResult]:
    if not dataset:
        return []
    return [
        EvalResult(
            task_type="sequential-recommendation",
            task_name="Sequential recommendation",
            dataset_type=dataset,
            dataset_name=data_name or dataset,
            dataset_config=data_name if data_name != dataset else None,  # the category of a Hub dataset
            dataset_split="test",
            metric_config=protocol,  # e.g. "history excluded": numbers are comparable only under one protocol
            metric_type=metric_type,
            metric_name=metric_name,
            metric_value=test[key].value,
        )
        for key, (metric_type, metric_name) in HEADLINE_METRICS.items()
        if key in test
    ]


def _test_rows(test: Mapping[str, Estimate]) -> list[dict[str, str]]:
    """One results-table row (metric, value, CI) per test metric."""
    return [{"metric": name.upper(), "value": _fmt(e.value), "ci": _ci(e)} for name, e in test.items()]


def _results_context(report: EvaluationReport | None) -> dict[str, Any]:
    """The template's data, protocol, results and training sections; empty without a report."""
    report = report or _NO_REPORT
    data, warm, cold, popularity = report.data, report.test_warm, report.test_cold, report.popularity
    other = report.other_protocol
    stats = data.stats if data else {}
    return {
        "evaluated": bool(report.test or report.valid),
        "data": {
            "name": data and data.name,
            "split": data and data.split,
            "synthetic": bool(stats.get("synthetic")),
            "stats": _pairs(stats, numbers_only=True),
        },
        "protocol": _pairs(report.protocol.to_dict()) if report.protocol else [],
        "ranking_protocol": report.protocol.name if report.protocol else None,
        "test_count": warm.count + cold.count,
        "test_rows": _test_rows(report.test),
        "other_protocol": other.protocol.name if other and other.protocol else None,
        "other_protocol_rows": _test_rows(other.test) if other else [],
        "warm_count": warm.count,
        "cold_count": cold.count,
        "warm_cold_rows": [
            {"metric": name.upper(), "warm": _with_ci(warm.metrics.get(name)), "cold": _with_ci(cold.metrics.get(name))}
            for name in warm.metrics or cold.metrics
        ],
        "popularity_rows": [
            {
                "metric": name.upper(),
                "model_valid": _fmt(report.valid.get(name)),
                "popularity_valid": _fmt(popularity.valid.get(name)),
                "model_test": _with_ci(report.test.get(name)),
                "popularity_test": _with_ci(popularity.test.get(name)),
            }
            for name in report.test or report.valid
        ]
        if popularity.valid or popularity.test
        else [],
        "training": _pairs(report.training.to_dict(), numbers_only=True) if report.training else [],
        "hyperparameters": _pairs(report.training.hyperparameters or {}) if report.training else [],
        "framework_versions": list((report.training.framework_versions or {}).items()) if report.training else [],
    }


def _architecture(model: GenRecModel | GenRecForSemanticIDGeneration, encoder: str | None) -> dict:
    """The config values (and content whitening) the card's "What it is" section reads, for either head."""
    config = model.config
    arch = {
        "num_items": config.num_items,
        "item_encoder": encoder,
        "item_encoder_type": config.item_encoder_type,
        "image_feature_dim": config.image_feature_dim,
        "num_hidden_layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "num_attention_heads": config.num_attention_heads,
        "max_seq_len": config.max_seq_len,
    }
    if isinstance(config, GenRecGenerativeConfig):
        stats = config.semantic_id_stats or {}
        return {
            **arch,
            "head": "generative",
            "fusion": "semantic_ids",
            "num_code_levels": config.num_code_levels,
            "codebook_size": config.codebook_size,
            "num_beams": config.num_beams,
            "collision_rate": _fmt(stats.get("collision_rate")),
            "codes_from_item_tower": config.quantized_item_tower is not None,
        }
    return {
        **arch,
        "head": "dense",
        "fusion": config.fusion,
        "loss_negatives": config.loss_negatives,
        "num_sampled_negatives": config.num_sampled_negatives,
        "content_whitened": model.item_tower.content_whitened,
    }


def build_model_card(
    model: GenRecModel | GenRecForSemanticIDGeneration,
    processor: GenRecProcessor,
    metrics: ReportSource = None,
    *,
    dataset_name: str | None = None,
    license: str = "apache-2.0",
    extra_tags: Iterable[str] = (),
    repo_id: str | None = None,
) -> ModelCard:
    """The model card of a GenRec model, rendered from the package template.

    Args:
        metrics: the run's `EvaluationReport` (or its `metrics.json`: a dict, the file, or its folder). Without it the
            card states that the model is untrained or unevaluated and shows no results.
        dataset_name: Hub dataset id for the `datasets` metadata and the `model-index` (e.g.
            `"McAuley-Lab/Amazon-Reviews-2023"`); defaults to the Hub dataset the data was downloaded from, else the
            report's data name.
        license: SPDX-style license id of the weights.
        extra_tags: tags added after `genrec_hf`, `sequential-recommendation`, `recommendation` (and `multimodal`,
            `clip` when the item encoder is CLIP with image features).
        repo_id: the repository the card is written for, used in the usage snippet and as the model name.
    """
    report = as_report(metrics)
    config = model.config
    data_name = report.data.name if report and report.data else None
    dataset = dataset_name or _hub_dataset(report) or data_name
    repo_id = repo_id or PLACEHOLDER_REPO_ID
    model_name = repo_id.split("/")[-1] if repo_id != PLACEHOLDER_REPO_ID else f"genrec-{data_name or 'model'}"
    tags = list(BASE_TAGS)
    if config.item_encoder_type == "clip":
        tags += ["multimodal", "clip"] if config.image_feature_dim and config.fusion != "id" else ["clip"]
    tags += [tag for tag in extra_tags if tag not in tags]
    encoder = config.item_encoder_name_or_path or (report.model.item_encoder if report and report.model else None)
    protocol = report.protocol.name if report and report.protocol else None
    eval_results = _eval_results(report.test, dataset, data_name, protocol) if report else []
    card_data = ModelCardData(
        library_name="transformers",
        license=license,
        tags=tags,
        datasets=[dataset] if dataset else None,
        base_model=encoder if is_hub_model_id(encoder) else None,
        metrics=CARD_METRIC_TYPES,
        model_name=model_name if eval_results else None,  # only the model-index needs it
        eval_results=eval_results or None,
    )
    arch = _architecture(model, encoder)
    return ModelCard.from_template(
        card_data,
        template_path=str(CARD_TEMPLATE),
        model_name=model_name,
        repo_id=repo_id,
        arch=arch,
        example_history=json.dumps(processor.item_vocab[1:3]),
        loss_choice=report.model.loss_choice if report and report.model else None,
        genrec_hf_version=__version__,
        cites_amazon_reviews_2023=dataset == AMAZON_REVIEWS_2023,
        **_results_context(report),
    )


__all__ = ["CARD_TEMPLATE", "build_model_card", "is_hub_model_id"]

"""Hub artifacts: the self-contained repository folder of a GenRec model, its model card, and `publish`.

A repository is built locally by `save_for_hub` (config, safetensors weights with the item catalog in its buffers,
processor files with the item vocabulary and the encoder's tokenizer and image processor, the `*_genrec.py` remote
code with `auto_map`, `README.md` and `metrics.json`) and sent with **one** `upload_folder` call by `publish`.

Why not the built-in push paths: `model.push_to_hub()` leaves out the processor and replaces README.md, and
`Trainer.push_to_hub()` writes a "generated_from_trainer" card. With `hub_strategy="every_save"` the Trainer pushes
checkpoints that hold config and weights but **not** `configuration_genrec.py` / `modeling_genrec.py`, so a Hub repo
whose config carries `auto_map` could not be loaded with `trust_remote_code=True`. `GenRecTrainer` therefore pushes
with `publish()` at the end of training and writes its card with `build_model_card()`.
"""

import contextlib
import copy
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from huggingface_hub import CommitInfo, EvalResult, HfApi, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .modeling_genrec import GenRecModel
from .processing_genrec import GenRecProcessor

logger = logging.getLogger(__name__)

CARD_TEMPLATE = Path(__file__).parent / "templates" / "model_card_template.md"
METRICS_FILE = "metrics.json"
DEFAULT_COMMIT_MESSAGE = "Upload GenRec model"
PLACEHOLDER_REPO_ID = "<namespace>/<model-name>"
# metrics.json key -> (model-index metric type, display name); HR@K equals Recall@K with one target per user.
HEADLINE_METRICS = {"hr@10": ("recall", "HR@10"), "ndcg@10": ("ndcg", "NDCG@10"), "mrr": ("mrr", "MRR")}
CARD_METRIC_TYPES = ["ndcg", "recall", "mrr"]
BASE_TAGS = ("genrec_hf", "sequential-recommendation", "recommendation")
# Files beside a trained model that go to the Hub with it: the training curves (scripts/train.py) and the
# precomputed item catalog (genrec_hf.inference.catalog: fused item vectors, their metadata, an optional FAISS index).
CARRIED_FILES = ("training_curves.png", "item_catalog.safetensors", "item_catalog.json", "item_catalog.faiss")


def register_remote_code(model: GenRecModel, processor: GenRecProcessor) -> None:
    """Marks the classes for remote code, so `save_pretrained` copies `*_genrec.py` and writes `auto_map`."""
    type(model.config).register_for_auto_class()
    type(model).register_for_auto_class("AutoModel")
    type(processor).register_for_auto_class("AutoProcessor")


@contextlib.contextmanager
def _remote_code(model: GenRecModel, processor: GenRecProcessor) -> Iterator[None]:
    """`register_remote_code` for the duration of a save only.

    Afterwards the classes' `_auto_class` and the `auto_map` that `save_pretrained` wrote onto the config, the
    processor and its image processor are as before, so later saves of the same objects (Trainer checkpoints) name no
    code files that they do not contain.
    """
    classes = (type(model.config), type(model), type(processor))
    previous_classes = [cls.__dict__.get("_auto_class") for cls in classes]
    parts = (getattr(processor, "image_processor", None), getattr(processor, "tokenizer", None))
    objects = [model.config, processor, *(part for part in parts if part is not None)]
    # (had one, its value): an instance without `auto_map` must end without one (save_pretrained mutates it in place)
    previous_maps = [("auto_map" in vars(obj), copy.deepcopy(vars(obj).get("auto_map"))) for obj in objects]
    register_remote_code(model, processor)
    try:
        yield
    finally:
        for cls, auto_class in zip(classes, previous_classes):
            cls._auto_class = auto_class
        for obj, (had_auto_map, auto_map) in zip(objects, previous_maps):
            if had_auto_map:
                obj.auto_map = auto_map
            elif "auto_map" in vars(obj):
                del obj.auto_map


# ----------------------------------------------------------------------------------------------------------------
# metrics.json
# ----------------------------------------------------------------------------------------------------------------
def load_metrics(source: Mapping | str | os.PathLike | None) -> dict | None:
    """The run's metrics: a dict as is, or `metrics.json` read from a file or from the folder holding it (None when
    the folder has none)."""
    if source is None or isinstance(source, Mapping):
        return None if source is None else dict(source)
    path = Path(source)
    if path.is_dir():
        path = path / METRICS_FILE
        if not path.is_file():
            return None
    return json.loads(path.read_text(encoding="utf-8"))


def _value(entry) -> float | None:
    """A metric's value, whether stored plainly (valid) or as `{"value", "ci_low", "ci_high"}` (test)."""
    return entry.get("value") if isinstance(entry, Mapping) else entry


def _fmt(number) -> str:
    """A metric for a table: 4 decimals; `–` when the run did not record it."""
    return "–" if number is None else f"{number:.4f}"


def _ci(entry) -> str:
    if not isinstance(entry, Mapping) or "ci_low" not in entry or "ci_high" not in entry:
        return "–"
    return f"[{_fmt(entry['ci_low'])}, {_fmt(entry['ci_high'])}]"


def _with_ci(entry) -> str:
    ci = _ci(entry)
    return _fmt(_value(entry)) + ("" if ci == "–" else f" {ci}")


def _metric_keys(*sections: Mapping) -> list[str]:
    """Metric names in the order the run wrote them (the first section that has any), without `count`."""
    for section in sections:
        keys = [key for key in section if key != "count"]
        if keys:
            return keys
    return []


def _pairs(section: Mapping, numbers_only: bool = False) -> list[tuple[str, str]]:
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


# ----------------------------------------------------------------------------------------------------------------
# Model card
# ----------------------------------------------------------------------------------------------------------------
def is_hub_model_id(name: str | None) -> bool:
    """Whether `name` is a Hub repo id (`org/name` or `name`) rather than a local folder."""
    if not name or Path(name).exists():
        return False
    try:
        validate_repo_id(name)  # rejects absolute, home-relative and dotted paths
    except HFValidationError:
        return False
    return True


def _eval_results(test: Mapping, dataset: str | None, data_name: str | None) -> list[EvalResult]:
    results = []
    for key, (metric_type, metric_name) in HEADLINE_METRICS.items():
        value = _value(test.get(key))
        if value is None or not dataset:
            continue
        results.append(
            EvalResult(
                task_type="sequential-recommendation",
                task_name="Sequential recommendation",
                dataset_type=dataset,
                dataset_name=data_name or dataset,
                dataset_split="test",
                metric_type=metric_type,
                metric_name=metric_name,
                metric_value=value,
            )
        )
    return results


def _card_context(model: GenRecModel, processor: GenRecProcessor, metrics: Mapping, repo_id: str) -> dict:
    """Everything the template shows besides prose: config numbers and ready-made table cells from `metrics`."""
    config = model.config
    data = metrics.get("data", {})
    stats = dict(data.get("stats", {}))
    test, valid = metrics.get("test", {}), metrics.get("valid", {})
    warm, cold = metrics.get("test_warm", {}), metrics.get("test_cold", {})
    popularity = metrics.get("popularity", {})
    keys = _metric_keys(test, valid)
    return {
        "repo_id": repo_id,
        "evaluated": bool(test or valid),
        "arch": {
            "num_items": config.num_items,
            "fusion": config.fusion,
            "item_encoder": config.item_encoder_name_or_path or metrics.get("model", {}).get("item_encoder"),
            "item_encoder_type": config.item_encoder_type,
            "image_feature_dim": config.image_feature_dim,
            "num_hidden_layers": config.num_hidden_layers,
            "hidden_size": config.hidden_size,
            "num_attention_heads": config.num_attention_heads,
            "max_seq_len": config.max_seq_len,
            "loss_negatives": config.loss_negatives,
            "num_sampled_negatives": config.num_sampled_negatives,
        },
        "data": {
            "name": data.get("name"),
            "split": data.get("split"),
            "synthetic": bool(stats.get("synthetic")),
            "stats": _pairs(stats, numbers_only=True),
        },
        "protocol": _pairs(metrics.get("protocol", {})),
        "test_count": test.get("count") or (warm.get("count", 0) + cold.get("count", 0)),
        "test_rows": [
            {"metric": k.upper(), "value": _fmt(_value(test[k])), "ci": _ci(test[k])} for k in _metric_keys(test)
        ],
        "warm_count": warm.get("count", 0),
        "cold_count": cold.get("count", 0),
        "warm_cold_rows": [
            {"metric": k.upper(), "warm": _with_ci(warm.get(k)), "cold": _with_ci(cold.get(k))}
            for k in _metric_keys(warm, cold)
        ],
        "popularity_rows": [
            {
                "metric": k.upper(),
                "model_valid": _fmt(_value(valid.get(k))),
                "popularity_valid": _fmt(_value(popularity.get("valid", {}).get(k))),
                "model_test": _with_ci(test.get(k)),
                "popularity_test": _with_ci(popularity.get("test", {}).get(k)),
            }
            for k in keys
        ]
        if popularity
        else [],
        "training": _pairs(metrics.get("training", {}), numbers_only=True),
        "example_history": json.dumps(processor.item_vocab[1:3]),
    }


def build_model_card(
    model: GenRecModel,
    processor: GenRecProcessor,
    metrics: Mapping | str | os.PathLike | None = None,
    *,
    dataset_name: str | None = None,
    license: str = "apache-2.0",
    extra_tags: Iterable[str] = (),
    repo_id: str | None = None,
) -> ModelCard:
    """The model card of a GenRec model, rendered from the package template (`model_card.md` is its source).

    Args:
        metrics: the run's `metrics.json` (a dict, the file, or its folder). Without it the card states that the model
            is untrained or unevaluated and shows no results; with it, every number shown comes from it.
        dataset_name: Hub dataset id for the `datasets` metadata and the `model-index` (e.g.
            `"McAuley-Lab/Amazon-Reviews-2023"`); defaults to the data name in `metrics.json`.
        license: SPDX-style license id of the weights.
        extra_tags: tags added after `genrec_hf`, `sequential-recommendation`, `recommendation` (and `multimodal`,
            `clip` when the item encoder is CLIP with image features).
        repo_id: the repository the card is written for, used in the usage snippet and as the model name.

    `GenRecTrainer.create_model_card` writes this card instead of the stock "generated_from_trainer" one:
    `build_model_card(self.model, self.processing_class, metrics).save(Path(self.args.output_dir) / "README.md")`.
    """
    metrics = load_metrics(metrics) or {}
    config = model.config
    data_name = metrics.get("data", {}).get("name")
    dataset = dataset_name or data_name
    repo_id = repo_id or PLACEHOLDER_REPO_ID
    model_name = repo_id.split("/")[-1] if repo_id != PLACEHOLDER_REPO_ID else f"genrec-{data_name or 'model'}"
    tags = list(BASE_TAGS)
    if config.item_encoder_type == "clip":
        tags += ["multimodal", "clip"] if config.image_feature_dim and config.fusion != "id" else ["clip"]
    tags += [tag for tag in extra_tags if tag not in tags]
    encoder = config.item_encoder_name_or_path or metrics.get("model", {}).get("item_encoder")
    eval_results = _eval_results(metrics.get("test", {}), dataset, data_name)
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
    return ModelCard.from_template(
        card_data,
        template_path=str(CARD_TEMPLATE),
        model_name=model_name,
        **_card_context(model, processor, metrics, repo_id),
    )


# ----------------------------------------------------------------------------------------------------------------
# Repository folder
# ----------------------------------------------------------------------------------------------------------------
def save_for_hub(
    model: GenRecModel,
    processor: GenRecProcessor,
    folder: str | os.PathLike,
    metrics: Mapping | str | os.PathLike | None = None,
    card: ModelCard | None = None,
    *,
    repo_id: str | None = None,
    extra_files: Iterable[str | os.PathLike] = (),
    **card_kwargs,
) -> Path:
    """Writes everything a stranger needs to load and judge the model with `trust_remote_code=True` into `folder`.

    The folder holds config.json (with `auto_map`), model.safetensors (weights and the item catalog: content
    features, known-ID flags, training popularity), the processor files (item vocabulary, encoder tokenizer and image
    processor, with `auto_map`), `configuration_genrec.py`, `modeling_genrec.py`, `processing_genrec.py` and their
    flat siblings, README.md (`card`, or `build_model_card(..., **card_kwargs)`), metrics.json when `metrics` are
    given, and a copy of each of `extra_files` (e.g. `training_curves.png`).
    """
    processor.check_num_items(model.config.num_items)
    folder = Path(folder)
    metrics = load_metrics(metrics)
    with _remote_code(model, processor):
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    if metrics is not None:
        (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    for extra in extra_files:
        shutil.copy2(extra, folder / Path(extra).name)
    card = card or build_model_card(model, processor, metrics, repo_id=repo_id, **card_kwargs)
    card.save(folder / "README.md")
    return folder


def load_for_hub(
    model_or_dir: GenRecModel | str | os.PathLike,
    processor: GenRecProcessor | None = None,
    metrics: Mapping | str | os.PathLike | None = None,
) -> tuple[GenRecModel, GenRecProcessor, dict | None, list[Path]]:
    """Model, processor, metrics and the files to carry along, from a `save_pretrained` folder or as given.

    From a folder: its `metrics.json` (unless `metrics` is given) and those of `CARRIED_FILES` it holds.
    """
    if isinstance(model_or_dir, (str, os.PathLike)):
        # genrec_hf's __init__ (always run before this module) registered the classes with the Auto classes.
        from transformers import AutoModel, AutoProcessor

        folder = Path(model_or_dir)
        model = AutoModel.from_pretrained(folder)
        processor = processor or AutoProcessor.from_pretrained(folder)
        carried = [folder / name for name in CARRIED_FILES if (folder / name).is_file()]
        return model, processor, load_metrics(metrics if metrics is not None else folder), carried
    if processor is None:
        raise ValueError("publishing a model object needs its `processor`")
    return model_or_dir, processor, load_metrics(metrics), []


def build_hub_folder(
    model_or_dir: GenRecModel | str | os.PathLike,
    folder: str | os.PathLike,
    *,
    processor: GenRecProcessor | None = None,
    metrics: Mapping | str | os.PathLike | None = None,
    **save_kwargs,
) -> Path:
    """The exact folder `publish` uploads, written to `folder` (which must be empty or absent): a dry run."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty; the Hub folder must hold only what would be uploaded")
    model, processor, metrics, carried = load_for_hub(model_or_dir, processor, metrics)
    return save_for_hub(model, processor, folder, metrics, **{"extra_files": carried, **save_kwargs})


# ----------------------------------------------------------------------------------------------------------------
# Publishing
# ----------------------------------------------------------------------------------------------------------------
def publish(
    model_or_dir: GenRecModel | str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    processor: GenRecProcessor | None = None,
    metrics: Mapping | str | os.PathLike | None = None,
    **save_kwargs,
) -> CommitInfo:
    """Creates `repo_id` if needed and uploads the `save_for_hub` folder of a model in one commit.

    Args:
        model_or_dir: a `GenRecModel` (then `processor` is required) or a `save_pretrained` folder holding model,
            processor and, when written, `metrics.json` and the `CARRIED_FILES` (which are uploaded too).
        token: a Hub token; by default huggingface_hub takes `HF_TOKEN` or the saved `hf auth login`. It is never
            printed or logged.
        private: visibility of a newly created repo (None: the account's default; an existing repo is unchanged).
        revision: branch to commit to (created from main when missing); `create_pr=True` opens a pull request
            against it instead.
        metrics: the run's `metrics.json` (dict or path); defaults to the one in `model_or_dir`.
        save_kwargs: passed to `save_for_hub` (`card`, `extra_files`, `dataset_name`, `license`, `extra_tags`).

    Returns the `CommitInfo`; load with `revision=commit_info.oid` to pin exactly this upload.

    For a Trainer run, call this at the end of training rather than using `push_to_hub=True` with
    `hub_strategy="every_save"`: those checkpoint pushes leave out the `*_genrec.py` code files.
    """
    from . import __version__

    model, processor, metrics, carried = load_for_hub(model_or_dir, processor, metrics)
    api = HfApi(token=token, library_name="genrec_hf", library_version=__version__)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if revision not in (None, "main") and not create_pr:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="genrec_hub_") as tmp:
        save_for_hub(model, processor, tmp, metrics, repo_id=repo_id, **{"extra_files": carried, **save_kwargs})
        logger.info("uploading %s to %s", sorted(p.name for p in Path(tmp).iterdir()), repo_id)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=tmp,
            revision=revision,
            create_pr=create_pr,
            commit_message=commit_message,
        )
    logger.info("published %s (pin it with revision=%r)", commit.pr_url or commit.commit_url, commit.oid)
    return commit


__all__ = [
    "build_hub_folder",
    "build_model_card",
    "load_metrics",
    "publish",
    "register_remote_code",
    "save_for_hub",
]

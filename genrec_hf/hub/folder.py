"""The Hub repository folder of a GenRec model: everything a stranger needs to load and judge it."""

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import ModelCard
from transformers import AutoModel, AutoProcessor

from ..evaluation.report import METRICS_FILE, EvaluationReport, ReportSource, as_report
from ..modeling_genrec import GenRecModel
from ..processing_genrec import GenRecProcessor
from .card import build_model_card
from .remote_code import remote_code_registered, save_pipeline_code

# Files beside a trained model that go to the Hub with it: the training curves (scripts/train.py) and the
# precomputed item catalog (genrec_hf.inference.catalog: fused item vectors, their metadata, an optional FAISS index).
CARRIED_FILES = ("training_curves.png", "item_catalog.safetensors", "item_catalog.json", "item_catalog.faiss")


def save_for_hub(
    model: GenRecModel,
    processor: GenRecProcessor,
    folder: str | os.PathLike,
    metrics: ReportSource = None,
    card: ModelCard | None = None,
    *,
    repo_id: str | None = None,
    extra_files: Iterable[str | os.PathLike] = (),
    **card_kwargs,
) -> Path:
    """Writes everything a stranger needs to load and judge the model with `trust_remote_code=True` into `folder`.

    The folder holds config.json (with `auto_map`), model.safetensors (weights, known-ID flags, training
    popularity), item_features.safetensors (the catalog's content features, for a dense model), the processor files
    (item vocabulary, encoder tokenizer and image processor, with `auto_map`), `configuration_genrec.py`,
    `modeling_genrec.py`, `processing_genrec.py` and their flat siblings, `pipeline_genrec.py` (named in config.json's
    `custom_pipelines`), README.md (`card`, or `build_model_card(..., **card_kwargs)`), metrics.json when `metrics`
    (an `EvaluationReport` or its `metrics.json`) are given, and a copy of each of `extra_files` (e.g.
    `training_curves.png`).
    """
    processor.check_num_items(model.config.num_items)
    folder = Path(folder)
    report = as_report(metrics)
    with remote_code_registered(model, processor):
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    save_pipeline_code(folder)
    if report is not None:
        public_report(report).save(folder / METRICS_FILE)
    for extra in extra_files:
        shutil.copy2(extra, folder / Path(extra).name)
    card = card or build_model_card(model, processor, report, repo_id=repo_id, **card_kwargs)
    card.save(folder / "README.md")
    return folder


def public_report(report: EvaluationReport) -> EvaluationReport:
    """The report as published: the local paths it records (input files, the checkpoint folder) cut to file names."""
    data = report.to_dict()
    stats = data.get("data", {}).get("stats", {})
    if "validation" in stats:
        files = stats["validation"]["files"]
        stats["validation"]["files"] = {Path(p).name: {**f, "path": Path(f["path"]).name} for p, f in files.items()}
    if "files_unreadable" in stats:
        stats["files_unreadable"] = [Path(p).name for p in stats["files_unreadable"]]
    if data.get("training", {}).get("best_checkpoint"):
        data["training"]["best_checkpoint"] = Path(data["training"]["best_checkpoint"]).name
    return EvaluationReport.from_dict(data)


def load_for_hub(
    model_or_dir: GenRecModel | str | os.PathLike,
    processor: GenRecProcessor | None = None,
    metrics: ReportSource = None,
) -> tuple[GenRecModel, GenRecProcessor, EvaluationReport | None, list[Path]]:
    """Model, processor, report and the files to carry along, from a `save_pretrained` folder or as given.

    From a folder: its `metrics.json` (unless `metrics` is given) and those of `CARRIED_FILES` it holds.
    """
    if isinstance(model_or_dir, (str, os.PathLike)):
        folder = Path(model_or_dir)
        model = AutoModel.from_pretrained(folder)
        processor = processor or AutoProcessor.from_pretrained(folder)
        carried = [folder / name for name in CARRIED_FILES if (folder / name).is_file()]
        return model, processor, as_report(metrics if metrics is not None else folder), carried
    if processor is None:
        raise ValueError("publishing a model object needs its `processor`")
    return model_or_dir, processor, as_report(metrics), []


def build_hub_folder(
    model_or_dir: GenRecModel | str | os.PathLike,
    folder: str | os.PathLike,
    *,
    processor: GenRecProcessor | None = None,
    metrics: ReportSource = None,
    **save_kwargs,
) -> Path:
    """The exact folder `publish` uploads, written to `folder` (which must be empty or absent): a dry run."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty; the Hub folder must hold only what would be uploaded")
    model, processor, report, carried = load_for_hub(model_or_dir, processor, metrics)
    return save_for_hub(model, processor, folder, report, **{"extra_files": carried, **save_kwargs})


__all__ = ["CARRIED_FILES", "build_hub_folder", "load_for_hub", "public_report", "save_for_hub"]

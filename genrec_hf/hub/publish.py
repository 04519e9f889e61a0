"""`publish`: one commit to the Hub holding the `save_for_hub` folder of a model."""

import logging
import os
import tempfile
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi

from .. import __version__
from ..evaluation.report import ReportSource
from ..modeling_genrec import GenRecModel
from ..processing_genrec import GenRecProcessor
from .folder import load_for_hub, save_for_hub

logger = logging.getLogger(__name__)

DEFAULT_COMMIT_MESSAGE = "Upload GenRec model"


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
    metrics: ReportSource = None,
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
        metrics: the run's `EvaluationReport` (or its `metrics.json`); defaults to the one in `model_or_dir`.
        save_kwargs: passed to `save_for_hub` (`card`, `extra_files`, `dataset_name`, `license`, `extra_tags`).

    Returns the `CommitInfo`; load with `revision=commit_info.oid` to pin exactly this upload.

    For a Trainer run, call this at the end of training rather than using `push_to_hub=True` with
    `hub_strategy="every_save"`: those checkpoint pushes leave out the `*_genrec.py` code files.
    """
    model, processor, report, carried = load_for_hub(model_or_dir, processor, metrics)
    api = HfApi(token=token, library_name="genrec_hf", library_version=__version__)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    if revision not in (None, "main") and not create_pr:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="genrec_hub_") as tmp:
        save_for_hub(model, processor, tmp, report, repo_id=repo_id, **{"extra_files": carried, **save_kwargs})
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


__all__ = ["DEFAULT_COMMIT_MESSAGE", "publish"]

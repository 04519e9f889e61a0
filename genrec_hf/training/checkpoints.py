"""Checkpoints to resume from: the newest complete one, or a named reason why the one asked for cannot be used (a
kill while the Trainer wrote it leaves files cut short)."""

import json
import logging
import zipfile
from pathlib import Path

from safetensors import SafetensorError, safe_open
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from .weight_averaging import TRAINING_WEIGHTS_NAME

logger = logging.getLogger("genrec_hf.train")

TORCH_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin", "rng_state*.pth")


def checkpoint_problem(folder: Path) -> str | None:
    """Why the Trainer checkpoint `folder` cannot be resumed from (a file missing, cut short or damaged), or `None`.

    Reads headers only: the trainer state as JSON, the safetensors headers (which must cover the whole file: the
    weights, and the trained weights of a weight-averaged run) and the zip directory of every `torch.save` file
    (written at the end of the file, so a cut file has none).
    """
    state = folder / "trainer_state.json"
    try:
        json.loads(state.read_text())
    except (OSError, ValueError) as error:
        return f"{state} is missing or damaged ({error})"
    weights = sorted(folder.glob("model*.safetensors"))
    if not weights:
        return f"{folder} holds no model*.safetensors"
    for path in [*weights, *folder.glob(TRAINING_WEIGHTS_NAME)]:
        try:
            with safe_open(path, "pt"):
                pass
        except SafetensorError as error:
            return f"{path} is damaged ({error})"
    for pattern in TORCH_FILES:
        for path in folder.glob(pattern):
            try:
                zipfile.ZipFile(path).close()
            except (OSError, zipfile.BadZipFile) as error:
                return f"{path} is damaged ({error})"
    return None


def resolve_checkpoint(resume: str | bool | None, output_dir: str | Path) -> str | None:
    """The checkpoint folder to resume from: `resume` itself when it is complete (else `ValueError` naming the damaged
    file), or with `True` the newest complete `checkpoint-*` of `output_dir` (damaged newer ones are skipped)."""
    if resume is None or resume is False:
        return None
    if resume is True:
        folders = sorted(
            (p for p in Path(output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.split("-")[-1].isdigit()),
            key=lambda p: int(p.name.split("-")[-1]),
            reverse=True,
        )
        for folder in folders:
            problem = checkpoint_problem(folder)
            if problem is None:
                return str(folder)
            logger.warning("not resuming from %s: %s", folder, problem)
        raise ValueError(f"no complete checkpoint in {output_dir} to resume from")
    folder = Path(resume)
    if not folder.is_dir():
        raise ValueError(f"resume_from_checkpoint: no checkpoint folder {folder}")
    problem = checkpoint_problem(folder)
    if problem is not None:
        raise ValueError(
            f"cannot resume from {folder}: {problem} (was the run killed while writing it?); resume from an earlier "
            "checkpoint"
        )
    return str(folder)


__all__ = ["checkpoint_problem", "resolve_checkpoint"]

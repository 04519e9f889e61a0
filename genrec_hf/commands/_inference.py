"""What the inference commands (`precompute`, `recommend`) share: logging, exit statuses, loading a model folder."""

import logging
import sys
from pathlib import Path

from safetensors import SafetensorError
from transformers import AutoModel, AutoProcessor

from .._atomic import finish_staged
from .._distributed import process_state
from ..modeling_genrec import GenRecModel
from ..modeling_genrec_generative import GenRecForSemanticIDGeneration

EXIT_OK, EXIT_LINE_ERRORS, EXIT_FAILED, EXIT_INCOMPLETE = 0, 1, 2, 3


def setup_logging() -> None:
    """Warnings from every library, progress notes from genrec_hf (not, e.g., faiss's loader chatter)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("genrec_hf").setLevel(logging.INFO)


def load_model_and_processor(folder: str, device: str = "cpu"):
    """The `GenRecModel` or `GenRecForSemanticIDGeneration` (eval mode) and `GenRecProcessor` saved in `folder`; a save
    that a kill interrupted in its final moves is finished first. A missing folder or damaged weights raise
    `ValueError` naming them."""
    if device == "auto":  # this process's accelerator (its own under accelerate launch / torchrun), else the CPU
        device = process_state().device
    if not Path(folder).is_dir():
        raise ValueError(f"no model folder {folder}")
    finish_staged(folder)
    try:
        model = AutoModel.from_pretrained(folder)
    except SafetensorError as error:
        raise ValueError(f"the weights in {folder} are damaged ({error}): save or download the model again") from None
    if not isinstance(model, (GenRecModel, GenRecForSemanticIDGeneration)):
        raise ValueError(f"{folder} holds a {type(model).__name__}, not a GenRec model")
    processor = AutoProcessor.from_pretrained(folder)
    processor.check_num_items(model.config.num_items, f"the model in {folder}")
    return model.to(device).eval(), processor

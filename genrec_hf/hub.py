"""Hub artifacts: the self-contained repository folder of a GenRec model (weights, processor, remote code)."""

from pathlib import Path

from .modeling_genrec import GenRecModel
from .processing_genrec import GenRecProcessor


def register_remote_code(model: GenRecModel, processor: GenRecProcessor) -> None:
    """Marks the classes for remote code, so `save_pretrained` copies `*_genrec.py` and writes `auto_map`."""
    type(model.config).register_for_auto_class()
    type(model).register_for_auto_class("AutoModel")
    type(processor).register_for_auto_class("AutoProcessor")


def save_for_hub(model: GenRecModel, processor: GenRecProcessor, folder: str | Path) -> Path:
    """Writes everything a stranger needs to load the model with `trust_remote_code=True` into `folder`."""
    if processor.num_items != model.config.num_items:
        raise ValueError(
            f"processor has {processor.num_items} items but the model has {model.config.num_items}: "
            "they must describe the same catalog"
        )
    folder = Path(folder)
    register_remote_code(model, processor)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder

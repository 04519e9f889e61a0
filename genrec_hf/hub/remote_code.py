"""Remote code: marking the GenRec classes for the Auto classes, so `save_pretrained` ships `*_genrec.py`, and
naming the shipped pipeline (`pipeline_genrec.py`) in the config's `custom_pipelines`."""

import contextlib
import copy
import os
from collections.abc import Iterator
from pathlib import Path

from transformers.dynamic_module_utils import custom_object_save

from ..modeling_genrec import GenRecModel
from ..pipeline_genrec import TASK, GenRecRecommendationPipeline
from ..processing_genrec import GenRecProcessor

# config.json's entry for `pipeline(model=..., trust_remote_code=True)`: the pipeline of the shipped file (genrec_hf's
# own where it is installed), loading the model with AutoModel (`auto_map` names the shipped modeling file)
CUSTOM_PIPELINES = {TASK: {"impl": "pipeline_genrec.NextItemRecommendationPipeline", "pt": ["AutoModel"]}}


def register_remote_code(model: GenRecModel, processor: GenRecProcessor) -> None:
    """Marks the classes for remote code, so `save_pretrained` copies `*_genrec.py` and writes `auto_map`."""
    type(model.config).register_for_auto_class()
    type(model).register_for_auto_class("AutoModel")
    type(processor).register_for_auto_class("AutoProcessor")
    model.config.custom_pipelines = copy.deepcopy(CUSTOM_PIPELINES)


def save_pipeline_code(folder: str | os.PathLike) -> list[Path]:
    """Copies the shipped pipeline file (and any flat sibling it imports) into `folder`."""
    return [Path(path) for path in custom_object_save(GenRecRecommendationPipeline, folder)]


@contextlib.contextmanager
def remote_code_registered(model: GenRecModel, processor: GenRecProcessor) -> Iterator[None]:
    """`register_remote_code` for the duration of a save only.

    Afterwards the classes' `_auto_class`, the config's `custom_pipelines` and the `auto_map` that `save_pretrained`
    wrote onto the config, the processor and its image processor are as before, so later saves of the same objects
    (Trainer checkpoints) name no code files that they do not contain.
    """
    classes = (type(model.config), type(model), type(processor))
    previous_classes = [cls.__dict__.get("_auto_class") for cls in classes]
    parts = (getattr(processor, "image_processor", None), getattr(processor, "tokenizer", None))
    objects = [model.config, processor, *(part for part in parts if part is not None)]
    # (had one, its value): an instance without `auto_map` must end without one (save_pretrained mutates it in place)
    previous = [(obj, "auto_map") for obj in objects] + [(model.config, "custom_pipelines")]
    previous_values = [(name in vars(obj), copy.deepcopy(vars(obj).get(name))) for obj, name in previous]
    register_remote_code(model, processor)
    try:
        yield
    finally:
        for cls, auto_class in zip(classes, previous_classes):
            cls._auto_class = auto_class
        for (obj, name), (had_value, value) in zip(previous, previous_values):
            if had_value:
                setattr(obj, name, value)
            elif name in vars(obj):
                delattr(obj, name)


__all__ = ["CUSTOM_PIPELINES", "register_remote_code", "remote_code_registered", "save_pipeline_code"]

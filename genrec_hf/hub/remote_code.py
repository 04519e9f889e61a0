"""Remote code: marking the GenRec classes for the Auto classes, so `save_pretrained` ships `*_genrec.py`."""

import contextlib
import copy
from collections.abc import Iterator

from ..modeling_genrec import GenRecModel
from ..processing_genrec import GenRecProcessor


def register_remote_code(model: GenRecModel, processor: GenRecProcessor) -> None:
    """Marks the classes for remote code, so `save_pretrained` copies `*_genrec.py` and writes `auto_map`."""
    type(model.config).register_for_auto_class()
    type(model).register_for_auto_class("AutoModel")
    type(processor).register_for_auto_class("AutoProcessor")


@contextlib.contextmanager
def remote_code_registered(model: GenRecModel, processor: GenRecProcessor) -> Iterator[None]:
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


__all__ = ["register_remote_code", "remote_code_registered"]

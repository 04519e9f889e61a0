"""`pipeline("next-item-recommendation", model=...)`: ranked next items for a history of `parent_asin`s.

```python
import genrec_hf  # registers the task
from transformers import pipeline

recommender = pipeline("next-item-recommendation", model="path/to/model")
recommender(["B0001", "B0002"], k=5)            # one history -> [{"parent_asin", "score", "title"}, ...]
recommender([["B0001"], ["B0003", "B0004"]])    # several histories -> one list per history
recommender(["B0001", {"parent_asin": "NEW1", "title": "Linen apron", "image_path": "apron.jpg"}])
recommender(histories, batch_size=64)           # histories scored 64 at a time
for ranked in recommender(KeyDataset(dataset, "history"), batch_size=64): ...   # a dataset column, streamed
```

A history item may be a dict carrying the content of an item that is not in the catalog (`parent_asin`, text
fields, optional `image_path`): it is encoded through the model's item encoder and appended to the catalog with
`add_items` (model, processor and catalog, in memory), then used like any other item. The catalog saved beside the
model (`item_catalog.safetensors`, optional FAISS index) is used when it matches the model; otherwise it is
computed from the model once.
"""

import logging
from collections.abc import Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass

from torch.utils.data import DataLoader, Dataset
from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator

from .catalog import ItemCatalog
from .items import add_items_to_catalog, load_item_encoder
from .recommender import recommend_for_histories

logger = logging.getLogger(__name__)

TASK = "next-item-recommendation"


@dataclass
class _History:
    """One history, wrapped so that `Pipeline.__call__` does not take its items for a batch of inputs."""

    items: Sequence


class NextItemRecommendationPipeline(Pipeline):
    """Next-item recommendation with a `GenRecModel` and its `GenRecProcessor`.

    Call arguments: `k` (default 10), `exclude_seen` (default True), `return_flags` (default False: a list of
    `{"parent_asin", "score", "title"}` per history; True: a dict that adds `unknown_items`, `popularity_fallback`,
    `truncated` and `warnings`). Constructor arguments: `catalog` (an `ItemCatalog`), `item_encoder` (an
    `ItemEncoder` for cold items; loaded from the model config on first use) and `use_faiss` (default True).
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(self, *args, catalog: ItemCatalog | None = None, item_encoder=None, use_faiss: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ValueError(f"the {TASK} pipeline needs the model's GenRecProcessor (processor=...)")
        self.catalog = catalog
        self.item_encoder = item_encoder
        self.use_faiss = use_faiss

    def _sanitize_parameters(self, k=None, exclude_seen=None, return_flags=None, **kwargs):
        forward = {key: value for key, value in (("k", k), ("exclude_seen", exclude_seen)) if value is not None}
        postprocess = {"return_flags": return_flags} if return_flags is not None else {}
        return {}, forward, postprocess

    def __call__(self, inputs, **kwargs):
        """`inputs`: one history (a list of `parent_asin`s or item dicts), a list of such histories, or a dataset or
        iterable of histories (e.g. `KeyDataset(dataset, "history")`: the results are then streamed)."""
        if _is_history(inputs):
            return super().__call__(_History(inputs), **kwargs)
        if isinstance(inputs, (list, tuple)) and all(_is_history(h) for h in inputs):
            return super().__call__([_History(h) for h in inputs], **kwargs)
        if isinstance(inputs, (Dataset, Iterable)) and not isinstance(inputs, (str, bytes, Mapping, list, tuple)):
            return super().__call__((_History(h) for h in inputs), **kwargs)
        raise TypeError(f"{TASK} expects a list of parent_asins (or item dicts), or a list or dataset of such lists")

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        """The base class's iterator, batching histories into lists (its own collate function pads tokenizer
        outputs, which a history is not)."""
        if batch_size == 1:
            return super().get_iterator(
                inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params
            )
        sized = isinstance(inputs, Sized)
        dataset = (PipelineDataset if sized else PipelineIterator)(inputs, self.preprocess, preprocess_params)
        loader = DataLoader(
            dataset, num_workers=num_workers if sized else min(num_workers, 1), batch_size=batch_size,
            collate_fn=_collate_histories,
        )  # fmt: skip
        model_iterator = PipelineIterator(loader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

    def get_catalog(self) -> ItemCatalog:
        """The catalog in use: given, saved beside the model and still matching it, or computed from the model."""
        if self.catalog is None:
            self.catalog = ItemCatalog.for_model(self.model, self.processor, with_index=self.use_faiss)
        return self.catalog

    def preprocess(self, inputs: _History) -> dict:
        history, cold = [], []
        for item in inputs.items:
            if isinstance(item, Mapping):
                asin = item.get("parent_asin")
                if not asin:
                    raise ValueError(f"an item dict needs a parent_asin: {dict(item)}")
                if asin not in self.processor and asin not in {c["parent_asin"] for c in cold}:
                    cold.append(item)
                history.append(str(asin))
            else:
                history.append(item)
        if cold:
            catalog = self.get_catalog()
            if self.item_encoder is None:
                self.item_encoder = load_item_encoder(self.model)
            add_items_to_catalog(self.model, self.processor, cold, self.item_encoder, catalog)
            logger.info("added %d new items to the catalog from their content", len(cold))
        return {"histories": [history]}

    def _forward(self, model_inputs: dict, k: int = 10, exclude_seen: bool = True) -> dict:
        histories = model_inputs["histories"]
        results = recommend_for_histories(
            self.model, self.processor, histories, k=k, exclude_seen=exclude_seen, catalog=self.get_catalog()
        )
        return {"results": results}

    def postprocess(self, model_outputs: dict, return_flags: bool = False):
        result = model_outputs["results"]
        if isinstance(result, list):  # an unbatched call: the one result of its one history
            (result,) = result
        for warning in result.warnings:
            logger.warning(warning)
        record = result.to_dict()
        return record if return_flags else record["recommendations"]


def _is_history(value) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(item, (str, Mapping)) for item in value)


def _collate_histories(batch: list[dict]) -> dict:
    return {"histories": [history for inputs in batch for history in inputs["histories"]]}


PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=NextItemRecommendationPipeline, pt_model=AutoModel)

__all__ = ["NextItemRecommendationPipeline", "TASK"]

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
from collections.abc import Mapping

from transformers import AutoModel
from transformers.pipelines import PIPELINE_REGISTRY

from ..pipeline_genrec import TASK, GenRecRecommendationPipeline, History
from .catalog import ItemCatalog
from .items import add_items_to_catalog, load_item_encoder
from .recommender import Recommendation, recommend_for_histories

logger = logging.getLogger(__name__)


class NextItemRecommendationPipeline(GenRecRecommendationPipeline):
    """Next-item recommendation with a `GenRecModel` and its `GenRecProcessor`.

    Call arguments: `k` (default 10), `exclude_seen` (default True), `return_flags` (default False: a list of
    `{"parent_asin", "score", "title"}` per history; True: a dict that adds `unknown_items`, `popularity_fallback`,
    `truncated` and `warnings`). Constructor arguments: `catalog` (an `ItemCatalog`), `item_encoder` (an
    `ItemEncoder` for cold items; loaded from the model config on first use) and `use_faiss` (default True).
    Batching and inputs are those of the shipped `GenRecRecommendationPipeline` (`pipeline_genrec.py`).
    """

    def __init__(self, *args, catalog: ItemCatalog | None = None, item_encoder=None, use_faiss: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog = catalog
        self.item_encoder = item_encoder
        self.use_faiss = use_faiss

    def get_catalog(self) -> ItemCatalog:
        """The catalog in use: given, saved beside the model and still matching it, or computed from the model."""
        if self.catalog is None:
            self.catalog = ItemCatalog.for_model(self.model, self.processor, with_index=self.use_faiss)
        return self.catalog

    def preprocess(self, inputs: History) -> dict:
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

    def to_record(self, result: Recommendation) -> dict:
        for warning in result.warnings:
            logger.warning(warning)
        return result.to_dict()


PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=NextItemRecommendationPipeline, pt_model=AutoModel)

__all__ = ["NextItemRecommendationPipeline", "TASK"]

"""Inference layer: the item catalog of a trained model, its FAISS index and resumable build, new items without
retraining, recommendations for any history, their explanations and similar items, the pipeline.

Names load with their module on first use, so registering the pipeline (`import genrec_hf`) does not pull in the
catalog build and its data-reading dependencies.
"""

from .._lazy import lazy_attributes

_EXPORTS = {
    "CatalogBuildOptions": "build",
    "CatalogBuildResult": "build",
    "build_catalog": "build",
    "ItemCatalog": "catalog",
    "Explanation": "explain",
    "explain_items": "explain",
    "similar_items": "explain",
    "build_faiss_index": "faiss_index",
    "faiss_recall_at_k": "faiss_index",
    "add_items_to_catalog": "items",
    "append_items": "items",
    "load_item_encoder": "items",
    "NextItemRecommendationPipeline": "pipeline",
    "Recommendation": "recommender",
    "rank_items": "recommender",
    "recommend_for_histories": "recommender",
}


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _EXPORTS)

__all__ = sorted(_EXPORTS)

"""Inference layer: the item catalog of a trained model, its FAISS index and resumable build, new items without
retraining, recommendations for any history, the pipeline, the CLI."""

from .build import CatalogBuildOptions, CatalogBuildResult, build_catalog
from .catalog import ItemCatalog
from .faiss_index import build_faiss_index, faiss_recall_at_k
from .items import add_items_to_catalog, append_items, load_item_encoder
from .pipeline import NextItemRecommendationPipeline
from .recommender import Recommendation, rank_items, recommend_for_histories

__all__ = [
    "CatalogBuildOptions",
    "CatalogBuildResult",
    "ItemCatalog",
    "NextItemRecommendationPipeline",
    "Recommendation",
    "add_items_to_catalog",
    "append_items",
    "build_catalog",
    "build_faiss_index",
    "faiss_recall_at_k",
    "load_item_encoder",
    "rank_items",
    "recommend_for_histories",
]

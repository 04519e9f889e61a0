"""Inference layer: the item catalog of a trained model, recommendations for any history, the pipeline."""

from .catalog import (
    CatalogBuildResult,
    ItemCatalog,
    add_items_to_catalog,
    build_catalog,
    build_faiss_index,
    faiss_recall_at_k,
    load_item_encoder,
    load_item_table,
)
from .pipeline import NextItemRecommendationPipeline
from .recommender import Recommendation, rank_items, recommend_for_histories

__all__ = [
    "CatalogBuildResult",
    "ItemCatalog",
    "NextItemRecommendationPipeline",
    "Recommendation",
    "add_items_to_catalog",
    "build_catalog",
    "build_faiss_index",
    "faiss_recall_at_k",
    "load_item_encoder",
    "load_item_table",
    "rank_items",
    "recommend_for_histories",
]

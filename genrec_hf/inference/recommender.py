"""Recommendations for histories of `parent_asin`s, with the bad-input rules of the serving path.

- an unknown `parent_asin` (not in the catalog) is reported for that user and left out of the history;
- an empty history (or one whose items are all unknown) gets the training popularity ranking, flagged;
- a history longer than the model's maximum keeps its most recent items (the count left out is reported);
- with `exclude_seen`, every catalog item of the history (also the left-out older ones) is removed from the ranking.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from ..modeling_genrec import GenRecRecommendations
from ..modeling_genrec_generative import GenRecForSemanticIDGeneration
from ..pipeline_genrec import recommend, top_items
from ..processing_genrec import GenRecProcessor
from ..ranking import PAD_ROW, exclude_history, popularity_scores, top_k
from .catalog import ItemCatalog, RecommenderModel, eval_mode
from .explain import Explanation

# Largest score matrix (histories x catalog rows) one batch may hold: 2^26 float32 values, 256 MiB.
MAX_SCORES_PER_BATCH = 1 << 26


@dataclass
class Recommendation:
    """Ranked items for one history, best first, and what was done to the history to serve it."""

    parent_asins: list[str]
    scores: list[float]
    titles: list[str | None]
    unknown_items: list[str] = field(default_factory=list)
    popularity_fallback: bool = False
    truncated: int = 0
    shortfall: int = 0
    explanations: list[Explanation] | None = None

    @property
    def warnings(self) -> list[str]:
        notes = []
        if self.shortfall:
            notes.append(
                f"{self.shortfall} fewer items than asked for: the catalog has no more items to rank outside the "
                "history's own (which are excluded)"
            )
        if self.unknown_items:
            notes.append(f"skipped {len(self.unknown_items)} unknown parent_asin(s) not in the catalog")
        if self.truncated:
            notes.append(f"history longer than the model's maximum: left out its {self.truncated} oldest items")
        if self.popularity_fallback:
            notes.append("no known items in the history: popularity ranking (scores are training counts)")
        return notes

    def to_dict(self) -> dict:
        """The record; with `explanations`, each recommendation adds `because` ("because of <title>") and its
        `explanation` (`content_share`, per-history-item `contributions`)."""
        recommendations = [
            {"parent_asin": a, "score": s, "title": t} for a, s, t in zip(self.parent_asins, self.scores, self.titles)
        ]
        for record, explanation in zip(recommendations, self.explanations or ()):
            record["because"] = explanation.because()
            record["explanation"] = {
                "content_share": explanation.content_share,
                "contributions": [asdict(c) for c in explanation.contributions],
            }
        return {
            "recommendations": recommendations,
            "unknown_items": self.unknown_items,
            "popularity_fallback": self.popularity_fallback,
            "truncated": self.truncated,
            "warnings": self.warnings,
        }


def rank_items(
    model: RecommenderModel,
    item_ids: torch.LongTensor,
    attention_mask: torch.Tensor,
    k: int,
    exclude_seen: bool = True,
    catalog: ItemCatalog | None = None,
) -> GenRecRecommendations:
    """Top-`k` catalog rows for right-padded histories: exact (`model.recommend` over the catalog vectors) or, when
    `catalog.index` is set, through FAISS; a generative model generates them (at least `k` beams). Rows that could not
    be filled (excluded items) score `-inf`."""
    if isinstance(model, GenRecForSemanticIDGeneration):
        return recommend(model, item_ids, attention_mask, k, exclude_seen)
    if catalog is None or catalog.index is None:
        vectors = None if catalog is None else catalog.embeddings.to(model.device)
        return model.recommend(item_ids, attention_mask, k=k, exclude_seen=exclude_seen, catalog=vectors)
    mask = attention_mask.bool()
    k = min(k, model.config.num_items)
    fetch = min(k + (int(mask.sum(dim=1).max()) if exclude_seen else 0), model.config.num_items)
    with torch.no_grad():
        _, last = model.encode_histories(item_ids, mask)
        scores, rows = catalog.search(last, fetch)
    if exclude_seen:
        scores = exclude_history(scores, item_ids, mask, candidate_rows=rows)
    else:
        scores = scores.masked_fill(rows == PAD_ROW, float("-inf"))
    empty = ~mask.any(dim=1).cpu()
    if empty.any():
        popular_rows, popular_scores = top_k(popularity_scores(model.item_popularity).cpu()[None], k)
        scores[empty], rows[empty] = float("-inf"), PAD_ROW
        scores[empty, :k], rows[empty, :k] = popular_scores, popular_rows
    indices, values = top_k(scores, k, candidate_rows=rows)
    return GenRecRecommendations(item_indices=indices, scores=values, popularity_fallback=empty)


def recommend_for_histories(
    model: RecommenderModel,
    processor: GenRecProcessor,
    histories: Sequence[Sequence[str]],
    k: int = 10,
    exclude_seen: bool = True,
    catalog: ItemCatalog | None = None,
    batch_size: int = 256,
) -> list[Recommendation]:
    """Top-`k` items for each history of `parent_asin`s (oldest first), one `Recommendation` per history.

    `catalog` is an `ItemCatalog` (precomputed vectors, titles, optional FAISS index); without it the catalog is
    computed from the model on every call. The model runs in eval mode whatever its current mode.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    catalog = catalog if catalog is not None else ItemCatalog.from_model(model, processor)
    processor.check_num_items(catalog.num_items, "the catalog")
    max_len = min(processor.max_seq_len, model.config.max_seq_len)
    batch_size = max(1, min(batch_size, MAX_SCORES_PER_BATCH // (catalog.num_items + 1)))
    results = []
    for start in range(0, len(histories), batch_size):
        block = histories[start : start + batch_size]
        indexed = processor.index_histories(block, unknown_items="skip", max_len=max_len)
        rows = [history.item_ids for history in indexed]
        seen = [set(history.all_item_ids) for history in indexed]
        partial = [
            Recommendation([], [], [], list(dict.fromkeys(history.unknown_items)), False, history.truncated)
            for history in indexed
        ]
        # Items of the history older than the window are excluded too: ask for that many more and filter.
        extra = max(len(s.difference(r)) for s, r in zip(seen, rows)) if exclude_seen else 0
        batch = processor.pad_histories(rows)
        with eval_mode(model):
            ranked = rank_items(
                model,
                batch["item_ids"].to(model.device),
                batch["attention_mask"].to(model.device),
                k + extra,
                exclude_seen,
                catalog,
            )
        for i, result in enumerate(partial):
            kept = top_items(ranked, i, seen[i] if exclude_seen else set(), k)
            result.parent_asins = [catalog.parent_asins[row] for row, _ in kept]
            result.scores = [score for _, score in kept]
            result.titles = [catalog.title(row) for row, _ in kept]
            result.popularity_fallback = bool(ranked.popularity_fallback[i])
            result.shortfall = k - len(kept) if exclude_seen else 0
            results.append(result)
    return results


__all__ = ["Recommendation", "rank_items", "recommend_for_histories"]

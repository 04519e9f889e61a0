"""Why an item is recommended, and which items are alike, for histories of `parent_asin`s.

Every head answers both questions with two methods of the model, the contract this module relies on:

- `model.explain(item_ids, item_indices, attention_mask)` -> `GenRecExplanation`: the score of each explained item for
  each right-padded history, the contribution of every history position to it (the score minus the score without that
  position), and the share of the item's vector that comes from its content;
- `model.similar_items(item_indices, k)` -> `GenRecSimilarItems`: the `k` items closest to each item, scored (the dense
  head also takes the catalog's precomputed vectors as `catalog`).

Both heads implement both: the dense head (`GenRecModel`) scores by dot products of item vectors, the generative head
(`GenRecForSemanticIDGeneration`) by `log P(item | history)` and shared semantic-ID prefixes. Histories are read with
the serving rules of `recommender` (unknown items skipped, the most recent `max_seq_len` items kept).
"""

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch

from ..modeling_genrec import GenRecModel
from ..processing_genrec import GenRecProcessor
from .catalog import ItemCatalog, RecommenderModel, eval_mode

# Tokens one `explain` call may encode: histories x (1 + history length) variants x history length.
MAX_TOKENS_PER_BATCH = 1 << 17


@dataclass
class Contribution:
    """What one history item adds to an item's score (negative: the item argues against it)."""

    parent_asin: str
    title: str | None
    contribution: float


@dataclass
class Explanation:
    """Why a history scores an item as it does: the contribution of every history item the model saw (oldest first)
    and the share of the item's vector that comes from its content rather than its ID."""

    parent_asin: str
    score: float
    content_share: float
    contributions: list[Contribution]

    def reasons(self, n: int = 2) -> list[Contribution]:
        """The (at most) `n` history items that raise the score most, each item once."""
        best: dict[str, Contribution] = {}
        for entry in sorted(self.contributions, key=lambda c: c.contribution, reverse=True):
            if entry.contribution > 0 and entry.parent_asin not in best:
                best[entry.parent_asin] = entry
        return list(best.values())[:n]

    def because(self, n: int = 2) -> str | None:
        """`because of <title> and <title>` for the top `n` reasons (`parent_asin` when an item has no title)."""
        names = [entry.title or entry.parent_asin for entry in self.reasons(n)]
        return f"because of {' and '.join(names)}" if names else None

    def to_dict(self) -> dict:
        return {**asdict(self), "because": self.because()}


@dataclass
class SimilarItem:
    parent_asin: str
    title: str | None
    score: float


def check_explainable(model) -> None:
    """Raises `ValueError` when `model` lacks the two methods of the contract (a head that does not explain yet)."""
    missing = [name for name in ("explain", "similar_items") if not callable(getattr(model, name, None))]
    if missing:
        raise ValueError(
            f"{type(model).__name__} does not implement {' and '.join(missing)} (see genrec_hf.inference.explain)"
        )


def _titles(catalog: ItemCatalog | None) -> Callable[[int], str | None]:
    return catalog.title if catalog is not None else lambda row: None


def explain_items(
    model: RecommenderModel,
    processor: GenRecProcessor,
    histories: Sequence[Sequence[str]],
    items: Sequence[Sequence[str]],
    catalog: ItemCatalog | None = None,
) -> list[list[Explanation]]:
    """For each history of `parent_asin`s, an `Explanation` of each of its `items` (e.g. its recommendations).

    Unknown history items are skipped and long histories keep their most recent items, as when recommending; an
    explained item must be in the catalog. `catalog` only supplies titles. Runs in eval mode.
    """
    check_explainable(model)
    if len(histories) != len(items):
        raise ValueError(f"{len(histories)} histories but {len(items)} lists of items to explain")
    window = min(processor.max_seq_len, model.config.max_seq_len)
    indexed = processor.index_histories(histories, unknown_items="skip", max_len=window)
    targets = [
        [processor.item_to_index(a, f"the items to explain of history {i}") for a in row] for i, row in enumerate(items)
    ]
    title = _titles(catalog)
    per_batch = max(1, MAX_TOKENS_PER_BATCH // ((window + 1) * window))
    results = []
    for start in range(0, len(indexed), per_batch):
        block, wanted = indexed[start : start + per_batch], targets[start : start + per_batch]
        batch = processor.pad_histories([history.item_ids for history in block])
        # Rows of different lengths are filled with a repeat of their first item (or item 1), not read back.
        width = max((len(row) for row in wanted), default=0) or 1
        explained = torch.tensor([row + [row[0] if row else 1] * (width - len(row)) for row in wanted])
        with eval_mode(model):
            output = model.explain(
                batch["item_ids"].to(model.device),
                explained.to(model.device),
                batch["attention_mask"].to(model.device),
            )
        for i, (history, row) in enumerate(zip(block, wanted)):
            seen = [(processor.index_to_item(index), title(index)) for index in history.item_ids]
            results.append(
                [
                    Explanation(
                        parent_asin=processor.index_to_item(item),
                        score=output.scores[i, j].item(),
                        content_share=output.content_share[i, j].item(),
                        contributions=[
                            Contribution(asin, name, value)
                            for (asin, name), value in zip(seen, output.contributions[i, j].tolist())
                        ],
                    )
                    for j, item in enumerate(row)
                ]
            )
    return results


def similar_items(
    model: RecommenderModel,
    processor: GenRecProcessor,
    parent_asins: Sequence[str],
    k: int = 10,
    catalog: ItemCatalog | None = None,
) -> list[list[SimilarItem]]:
    """The `k` items most similar to each of `parent_asins` (unknown ones raise `UnknownItemError`), most similar
    first. `catalog` supplies the precomputed item vectors and titles. Runs in eval mode."""
    check_explainable(model)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rows = torch.tensor([processor.item_to_index(a, "the items to find similar items for") for a in parent_asins])
    # the dense head reuses the catalog's precomputed vectors; a generative catalog holds codes the model has itself
    dense = isinstance(model, GenRecModel) and catalog is not None
    with eval_mode(model):
        if dense:
            similar = model.similar_items(rows.to(model.device), k=k, catalog=catalog.embeddings.to(model.device))
        else:
            similar = model.similar_items(rows.to(model.device), k=k)
    title = _titles(catalog)
    return [
        [SimilarItem(processor.index_to_item(row), title(row), score) for row, score in zip(indices, scores)]
        for indices, scores in zip(similar.item_indices.tolist(), similar.scores.tolist())
    ]


__all__ = [
    "Contribution",
    "Explanation",
    "MAX_TOKENS_PER_BATCH",
    "SimilarItem",
    "check_explainable",
    "explain_items",
    "similar_items",
]

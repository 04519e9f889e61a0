"""What the demo app (`app.py`) shows, without the UI toolkit: a trained model with its catalog, titles and photos;
title search; recommendations with their explanations; similar items. Results are HTML cards (photo, title, score,
reason) whose `data-parent-asin` attributes let a browser test read them back.
"""

import base64
import html
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .commands._inference import load_model_and_processor
from .commands.recommend import parse_history_line
from .data.items import item_column, load_item_table
from .inference.catalog import ItemCatalog
from .inference.explain import check_explainable, explain_items, similar_items
from .inference.recommender import recommend_for_histories
from .item_content import load_image
from .modeling_genrec import GenRecModel
from .processing_genrec import GenRecProcessor

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = 192
EMPTY_HISTORY = "Your history is empty: search for items and add them (or type parent_asins)."


@dataclass
class Card:
    """One item as the demo shows it."""

    parent_asin: str
    title: str
    photo: str | None
    score: float | None = None
    note: str | None = None


@lru_cache(maxsize=4096)
def thumbnail_uri(path: str) -> str | None:
    """A small JPEG of the photo at `path` as a `data:` URI (`None` when it is missing or unreadable)."""
    image = load_image(path)
    if image is None:
        return None
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render_cards(cards: Sequence[Card], css_class: str = "genrec-cards") -> str:
    """HTML of `cards`: photo (or a "no photo" tile), title, score and note, each tagged with its `parent_asin`."""
    parts = []
    for card in cards:
        uri = thumbnail_uri(card.photo) if card.photo else None
        title = html.escape(card.title)
        picture = f'<img src="{uri}" alt="{title}">' if uri else '<div class="genrec-nophoto">no photo</div>'
        score = f'<span class="genrec-score">score {card.score:.3f}</span>' if card.score is not None else ""
        note = f'<span class="genrec-note">{html.escape(card.note)}</span>' if card.note else ""
        parts.append(
            f'<figure class="genrec-card" data-parent-asin="{html.escape(card.parent_asin)}">{picture}'
            f'<figcaption><span class="genrec-title">{title}</span>{score}{note}</figcaption></figure>'
        )
    return f'<div class="{css_class}">{"".join(parts)}</div>'


def parse_history(text: str) -> list[str]:
    """`parent_asin`s from the history box: separated by whitespace or commas, or a JSON list."""
    return parse_history_line(text or "", 0)[1]


class RecommenderDemo:
    """A model, its processor and catalog, and the title and photo of every item the item table knows."""

    def __init__(
        self,
        model: GenRecModel,
        processor: GenRecProcessor,
        catalog: ItemCatalog,
        titles: Mapping[str, str] | None = None,
        photos: Mapping[str, str] | None = None,
    ):
        """`titles` fill in (or replace) the catalog's titles, which every result and explanation shows."""
        check_explainable(model)
        if titles:
            catalog.titles = [titles.get(asin) or title for asin, title in zip(catalog.parent_asins, catalog.titles)]
        self.model, self.processor, self.catalog = model, processor, catalog
        self.titles = {asin: title for asin, title in zip(catalog.parent_asins, catalog.titles) if title}
        self.photos = dict(photos or {})

    @classmethod
    def load(cls, model: str, items: str | None = None, device: str = "cpu") -> "RecommenderDemo":
        """The model folder (or Hub repo id) `model`, with titles and photos from the item table `items` (default:
        the prepared data the training run left in `<model>/data`, when there is one)."""
        genrec, processor = load_model_and_processor(model, device)
        catalog = ItemCatalog.for_model(genrec, processor, model if Path(model).is_dir() else None)
        if items is None and (Path(model) / "data" / "items").is_dir():
            items = str(Path(model) / "data")
        titles, photos = {}, {}
        if items is not None:
            table = load_item_table(items)
            asins = item_column(table, "parent_asin")
            titles = {a: t for a, t in zip(asins, item_column(table, "title")) if t}
            photos = {a: p for a, p in zip(asins, item_column(table, "image_path")) if p}
            logger.info("item table %s: %d titles, %d photos", items, len(titles), len(photos))
        return cls(genrec, processor, catalog, titles, photos)

    def card(self, parent_asin: str, score: float | None = None, note: str | None = None) -> Card:
        return Card(parent_asin, self.titles.get(parent_asin, parent_asin), self.photos.get(parent_asin), score, note)

    def search(self, query: str, limit: int = 8) -> list[tuple[str, str]]:
        """`(label, parent_asin)` of the items whose title or `parent_asin` contains `query` (case-insensitive)."""
        needle = (query or "").strip().lower()
        if not needle:
            return []
        found = [
            (f"{self.titles.get(asin, asin)} ({asin})", asin)
            for asin in self.processor.item_vocab[1:]
            if needle in asin.lower() or needle in self.titles.get(asin, "").lower()
        ]
        return found[:limit]

    def show_history(self, text: str) -> str:
        history = parse_history(text)
        return render_cards([self.card(a) for a in history if a in self.processor], "genrec-history")

    def recommend(self, text: str, k: int = 10) -> tuple[str, str]:
        """`(message, cards)`: the top-`k` recommendations for the history, each with why it is recommended."""
        history = parse_history(text)
        (result,) = recommend_for_histories(self.model, self.processor, [history], k=int(k), catalog=self.catalog)
        (explanations,) = explain_items(self.model, self.processor, [history], [result.parent_asins], self.catalog)
        notes = [self._reason(e) for e in explanations]
        cards = [self.card(a, s, n) for a, s, n in zip(result.parent_asins, result.scores, notes)]
        known = sum(asin in self.processor for asin in history)
        summary = f"Top {len(cards)} of {self.processor.num_items} items for a history of {known} known items."
        messages = ([EMPTY_HISTORY] if not history else [summary]) + result.warnings
        return "\n\n".join(messages), render_cards(cards)

    def similar(self, parent_asin: str | None, k: int = 10) -> tuple[str, str]:
        """`(message, cards)`: the `k` items most similar to `parent_asin`."""
        if not parent_asin:
            return "Pick an item first: search for it and select it.", ""
        if parent_asin not in self.processor:
            return f"{parent_asin} is not in the catalog.", ""
        (similar,) = similar_items(self.model, self.processor, [parent_asin], k=int(k), catalog=self.catalog)
        title = self.titles.get(parent_asin, parent_asin)
        return f"Items most similar to {title}:", render_cards([self.card(s.parent_asin, s.score) for s in similar])

    def _reason(self, explanation) -> str:
        share = f"content {explanation.content_share:.0%} / ID {1 - explanation.content_share:.0%}"
        because = explanation.because()
        return f"{because}; {share}" if because else share


__all__ = ["Card", "RecommenderDemo", "parse_history", "render_cards", "thumbnail_uri"]

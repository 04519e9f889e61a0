"""The item catalog of a trained model: fused item vectors, titles and an optional FAISS index, saved beside it.

Files written beside the model (`save_pretrained` folder):

- `item_catalog.safetensors`: `embeddings`, the fused item vectors of every catalog row `(num_items + 1, d)` (row 0
  is padding and is never recommended); for a generative model, each row's semantic-ID codes instead (as floats);
- `item_catalog.json`: `parent_asins` and `titles` in catalog order, and the FAISS settings with their recall@10;
- `item_catalog.faiss` (optional): an inner-product index over rows `1..num_items` (FAISS position `p` is row `p + 1`).

`inference.build` computes and saves them for a model and an item table.
"""

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HFValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .._atomic import atomic_path, atomic_write_text
from ..modeling_genrec import GenRecModel
from ..modeling_genrec_generative import GenRecForSemanticIDGeneration
from ..processing_genrec import GenRecProcessor
from .faiss_index import load_faiss_index, save_faiss_index

logger = logging.getLogger(__name__)

CATALOG_WEIGHTS = "item_catalog.safetensors"
CATALOG_METADATA = "item_catalog.json"
CATALOG_FAISS = "item_catalog.faiss"


RecommenderModel = GenRecModel | GenRecForSemanticIDGeneration


def item_representations(model: RecommenderModel, rows: torch.LongTensor) -> torch.Tensor:
    """What a catalog stores per row, as float32 on the CPU: the item vectors of a dense model, the semantic-ID
    codes of a generative one (which ranks by beam search, not by vectors)."""
    with eval_mode(model):
        if isinstance(model, GenRecForSemanticIDGeneration):
            return model.item_codes[rows.to(model.item_codes.device)].float().cpu()
        return model.embed_items(rows.to(model.device)).float().cpu()


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Runs the block in eval mode without gradients, then restores the model's mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


@dataclass
class ItemCatalog:
    """Fused item vectors of a model's catalog (a generative model's: semantic-ID codes), with `parent_asin`s, titles
    and an optional FAISS index (dense models only).

    Row `i` of `embeddings` is catalog index `i` of the model and the processor (row 0 is padding).
    """

    embeddings: torch.Tensor
    parent_asins: list[str]
    titles: list[str | None]
    index: Any = None
    index_info: dict = field(default_factory=dict)

    @property
    def num_items(self) -> int:
        return len(self.parent_asins) - 1

    @classmethod
    def from_model(
        cls, model: RecommenderModel, processor: GenRecProcessor, titles: Mapping[str, str] | None = None
    ) -> "ItemCatalog":
        """Computes the catalog of `model` (its current buffers and weights) in eval mode."""
        processor.check_num_items(model.config.num_items)
        embeddings = item_representations(model, torch.arange(model.config.num_items + 1))
        titles = titles or {}
        return cls(embeddings, list(processor.item_vocab), [titles.get(a) for a in processor.item_vocab])

    def save(self, folder: str | Path) -> None:
        """Writes the catalog files, each replaced in one rename (a kill never leaves a half-written one)."""
        folder = Path(folder)
        with atomic_path(folder / CATALOG_WEIGHTS) as path:
            save_file({"embeddings": self.embeddings.contiguous()}, path)
        if self.index is not None:
            with atomic_path(folder / CATALOG_FAISS) as path:
                save_faiss_index(self.index, path)
        metadata = {
            "num_items": self.num_items,
            "dim": self.embeddings.shape[1],
            "faiss": self.index_info or None,
            "parent_asins": self.parent_asins,
            "titles": self.titles,
        }
        atomic_write_text(folder / CATALOG_METADATA, json.dumps(metadata))
        if self.index is None:
            (folder / CATALOG_FAISS).unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: str | Path, with_index: bool = True) -> "ItemCatalog":
        """The catalog saved in `folder`; a damaged file raises `ValueError` naming it. The FAISS index is read only
        when the metadata records one."""
        folder = Path(folder)
        metadata = read_catalog_metadata(folder / CATALOG_METADATA)
        try:
            embeddings = load_file(folder / CATALOG_WEIGHTS)["embeddings"]
        except (SafetensorError, KeyError) as error:
            raise ValueError(f"{folder / CATALOG_WEIGHTS} is damaged ({error})") from None
        if len(embeddings) != len(metadata["parent_asins"]):
            raise ValueError(f"{folder / CATALOG_WEIGHTS} and {CATALOG_METADATA} disagree on the number of items")
        catalog = cls(embeddings, metadata["parent_asins"], metadata["titles"], index_info=metadata.get("faiss") or {})
        if with_index and catalog.index_info and (folder / CATALOG_FAISS).exists():
            try:
                catalog.index = load_faiss_index(folder / CATALOG_FAISS, catalog.index_info)
            except RuntimeError as error:  # FAISS reports a damaged file as a RuntimeError
                raise ValueError(f"{folder / CATALOG_FAISS} is damaged ({error})") from None
        return catalog

    @classmethod
    def for_model(
        cls,
        model: RecommenderModel,
        processor: GenRecProcessor,
        folder: str | Path | None = None,
        with_index: bool = True,
    ) -> "ItemCatalog":
        """The catalog saved in `folder` (default: where the model was loaded from: a folder, or a Hub repo whose
        uploaded catalog files are fetched through huggingface_hub) when it still matches the model, else one
        computed from the model now (exact search, no titles)."""
        folder = folder or getattr(model, "name_or_path", None)
        if folder and not Path(folder).exists():
            folder = downloaded_catalog(str(folder), getattr(model.config, "_commit_hash", None))
        if folder and cls.exists(folder):
            try:
                catalog = cls.load(folder, with_index=with_index)
            except ValueError as error:  # the catalog is a cache of the model: a damaged one is computed again
                logger.warning("%s: computing the catalog from the model (rerun precompute_embeddings.py)", error)
                return cls.from_model(model, processor)
            if catalog.matches(model, processor):
                return catalog
            logger.warning("the catalog saved in %s does not match the model: rerun precompute_embeddings.py", folder)
        elif folder and Path(folder).is_dir():
            logger.warning("no precomputed catalog in %s (precompute_embeddings.py adds titles and speed)", folder)
        return cls.from_model(model, processor)

    @classmethod
    def exists(cls, folder: str | Path) -> bool:
        return (Path(folder) / CATALOG_WEIGHTS).exists() and (Path(folder) / CATALOG_METADATA).exists()

    def matches(self, model: RecommenderModel, processor: GenRecProcessor, sample: int = 64) -> bool:
        """Whether this catalog still describes `model`: same items in the same order, and the vectors of a sample
        of rows equal to what the model computes now (a retrained or edited model makes a saved catalog stale)."""
        if self.parent_asins != processor.item_vocab or self.num_items != model.config.num_items:
            return False
        rows = torch.randperm(self.num_items, generator=torch.Generator().manual_seed(0))[:sample] + 1
        fresh = item_representations(model, rows)
        return fresh.shape == self.embeddings[rows].shape and torch.allclose(fresh, self.embeddings[rows], atol=1e-4)

    def extend(self, model: RecommenderModel, processor: GenRecProcessor, titles: Sequence[str | None] = ()) -> None:
        """Appends the rows the model and processor gained since this catalog was computed (e.g. `add_items`)."""
        start = self.num_items + 1
        new_rows = torch.arange(start, model.config.num_items + 1)
        if not len(new_rows):
            return
        vectors = item_representations(model, new_rows)
        self.embeddings = torch.cat([self.embeddings, vectors])
        self.parent_asins.extend(processor.item_vocab[start:])
        self.titles.extend(list(titles) + [None] * (len(new_rows) - len(titles)))
        if self.index is not None:
            self.index.add(vectors.numpy())

    def title(self, row: int) -> str | None:
        return self.titles[row] if row < len(self.titles) else None

    def search(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """FAISS inner products and catalog rows (0 where the index returned fewer than `k`)."""
        scores, positions = self.index.search(queries.detach().float().cpu().contiguous().numpy(), k)
        positions = torch.from_numpy(positions)
        return torch.from_numpy(scores), torch.where(positions >= 0, positions + 1, 0)


def downloaded_catalog(repo_id: str, revision: str | None = None) -> Path | None:
    """The local folder of the catalog files uploaded to the Hub model repo `repo_id` at `revision` (fetched through
    huggingface_hub into its cache, so offline mode and a warm cache work), or `None` when it has none or cannot be
    reached."""
    try:
        paths = [hf_hub_download(repo_id, name, revision=revision) for name in (CATALOG_METADATA, CATALOG_WEIGHTS)]
    except (EntryNotFoundError, HFValidationError, OSError) as error:  # no such file or repo, offline, unreachable
        logger.warning("no item catalog from the Hub repo %s (%s)", repo_id, type(error).__name__)
        return None
    try:  # optional: uploaded only when the catalog was built with one
        hf_hub_download(repo_id, CATALOG_FAISS, revision=revision)
    except (EntryNotFoundError, OSError):
        pass
    return Path(paths[0]).parent


def read_catalog_metadata(path: Path) -> dict:
    """The content of `item_catalog.json`; a damaged file raises `ValueError` naming it."""
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is damaged (not JSON: {error})") from None
    if not isinstance(metadata, dict) or not {"parent_asins", "titles"} <= metadata.keys():
        raise ValueError(f"{path} is damaged (no parent_asins and titles)")
    return metadata


def saved_titles(folder: Path) -> dict[str, str]:
    """`parent_asin -> title` of the catalog saved in `folder` (empty when there is none, or it is damaged)."""
    path = folder / CATALOG_METADATA
    if not path.exists():
        return {}
    try:
        metadata = read_catalog_metadata(path)
    except ValueError as error:
        logger.warning("%s: its titles are lost", error)
        return {}
    return {a: t for a, t in zip(metadata["parent_asins"], metadata["titles"]) if t}


__all__ = [
    "CATALOG_FAISS",
    "CATALOG_METADATA",
    "CATALOG_WEIGHTS",
    "ItemCatalog",
    "downloaded_catalog",
    "RecommenderModel",
    "eval_mode",
    "item_representations",
    "saved_titles",
]

"""The item catalog of a trained model: fused item vectors, titles and an optional FAISS index, built resumably.

Files written beside the model (`save_pretrained` folder):

- `item_catalog.safetensors`: `embeddings`, the L2-normalised fused vectors of every catalog row `(num_items + 1, d)`
  (row 0 is padding and is never recommended);
- `item_catalog.json`: `parent_asins` and `titles` in catalog order, and the FAISS settings with their recall@10;
- `item_catalog.faiss` (optional): an inner-product index over rows `1..num_items` (FAISS position `p` is row `p + 1`).

Items of the table that the model has never seen are encoded through the model's item encoder in chunks, each chunk
saved as it finishes under `.item_catalog_work/`; a rerun after an interruption encodes only the missing chunks.
"""

import gzip
import hashlib
import json
import logging
import math
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..item_encoder import ItemEncoder, ItemFeatures
from ..modeling_genrec import GenRecModel
from ..processing_genrec import PAD_ITEM, GenRecProcessor
from ..ranking import top_k

logger = logging.getLogger(__name__)

CATALOG_WEIGHTS = "item_catalog.safetensors"
CATALOG_METADATA = "item_catalog.json"
CATALOG_FAISS = "item_catalog.faiss"
WORK_DIR = ".item_catalog_work"
FAISS_KINDS = ("none", "flat", "ivf", "hnsw")


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


# ----------------------------------------------------------------------------------------------------------------
# Item tables
# ----------------------------------------------------------------------------------------------------------------
def load_item_table(source) -> Sequence[Mapping]:
    """Item records from a list of dicts, a `datasets.Dataset`, a folder saved with `Dataset.save_to_disk` (or a
    prepared-data folder holding one as `items/`), or a JSON / JSON-lines file (optionally `.gz`). Every record needs
    a `parent_asin`; text fields and `image_path` are optional."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir() and (path / "items").is_dir():
            path = path / "items"  # a prepared-data folder (splits/, items/)
        if path.is_dir():
            from datasets import load_from_disk

            source = load_from_disk(str(path))
        else:
            source = _read_json_records(path)
    columns = getattr(source, "column_names", None)
    if columns is not None and "parent_asin" not in columns:
        raise ValueError(f"the item table has no parent_asin column (columns: {columns})")
    if columns is None:
        source = list(source)
        for number, record in enumerate(source, 1):
            if not isinstance(record, Mapping) or not record.get("parent_asin"):
                raise ValueError(f"item record {number} has no parent_asin: {str(record)[:200]}")
    return source


def _read_json_records(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        text = handle.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not a JSON record ({error})") from None
    return records


def _column(table: Sequence[Mapping], name: str) -> list:
    if getattr(table, "column_names", None) is not None:
        return list(table[name]) if name in table.column_names else [None] * len(table)
    return [record.get(name) for record in table]


def _take(table: Sequence[Mapping], positions: Sequence[int]) -> Sequence[Mapping]:
    return table.select(positions) if hasattr(table, "select") else [table[i] for i in positions]


# ----------------------------------------------------------------------------------------------------------------
# The catalog
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class ItemCatalog:
    """Fused, normalised item vectors of a model's catalog, with `parent_asin`s, titles and an optional FAISS index.

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
        cls, model: GenRecModel, processor: GenRecProcessor, titles: Mapping[str, str] | None = None
    ) -> "ItemCatalog":
        """Computes the catalog of `model` (its current buffers and weights) in eval mode."""
        if processor.num_items != model.config.num_items:
            raise ValueError(
                f"processor has {processor.num_items} items but the model has {model.config.num_items}: "
                "they must describe the same catalog"
            )
        with eval_mode(model):
            embeddings = model.catalog_embeddings().float().cpu()
        titles = titles or {}
        return cls(embeddings, list(processor.item_vocab), [titles.get(a) for a in processor.item_vocab])

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"embeddings": self.embeddings.contiguous()}, folder / CATALOG_WEIGHTS)
        metadata = {
            "num_items": self.num_items,
            "dim": self.embeddings.shape[1],
            "faiss": self.index_info or None,
            "parent_asins": self.parent_asins,
            "titles": self.titles,
        }
        (folder / CATALOG_METADATA).write_text(json.dumps(metadata))
        index_path = folder / CATALOG_FAISS
        if self.index is not None:
            import faiss

            faiss.write_index(self.index, str(index_path))
        elif index_path.exists():
            index_path.unlink()

    @classmethod
    def load(cls, folder: str | Path, with_index: bool = True) -> "ItemCatalog":
        folder = Path(folder)
        metadata = json.loads((folder / CATALOG_METADATA).read_text())
        embeddings = load_file(folder / CATALOG_WEIGHTS)["embeddings"]
        catalog = cls(embeddings, metadata["parent_asins"], metadata["titles"], index_info=metadata.get("faiss") or {})
        if with_index and (folder / CATALOG_FAISS).exists():
            import faiss

            catalog.index = faiss.read_index(str(folder / CATALOG_FAISS))
            set_search_parameters(catalog.index, catalog.index_info)
        return catalog

    @classmethod
    def for_model(
        cls, model: GenRecModel, processor: GenRecProcessor, folder: str | Path | None = None, with_index: bool = True
    ) -> "ItemCatalog":
        """The catalog saved in `folder` (default: the folder the model was loaded from) when it still matches the
        model, else one computed from the model now (exact search, no titles)."""
        folder = folder or getattr(model, "name_or_path", None)
        if folder and cls.exists(folder):
            catalog = cls.load(folder, with_index=with_index)
            if catalog.matches(model, processor):
                return catalog
            logger.warning("the catalog saved in %s does not match the model: rerun precompute_embeddings.py", folder)
        elif folder and Path(folder).is_dir():
            logger.warning("no precomputed catalog in %s (precompute_embeddings.py adds titles and speed)", folder)
        return cls.from_model(model, processor)

    @classmethod
    def exists(cls, folder: str | Path) -> bool:
        return (Path(folder) / CATALOG_WEIGHTS).exists() and (Path(folder) / CATALOG_METADATA).exists()

    def matches(self, model: GenRecModel, processor: GenRecProcessor, sample: int = 64) -> bool:
        """Whether this catalog still describes `model`: same items in the same order, and the vectors of a sample
        of rows equal to what the model computes now (a retrained or edited model makes a saved catalog stale)."""
        if self.parent_asins != processor.item_vocab or self.num_items != model.config.num_items:
            return False
        rows = torch.randperm(self.num_items, generator=torch.Generator().manual_seed(0))[:sample] + 1
        with eval_mode(model):
            fresh = model.scoring_vectors(rows.to(model.device)).float().cpu()
        return torch.allclose(fresh, self.embeddings[rows], atol=1e-4)

    def extend(self, model: GenRecModel, processor: GenRecProcessor, titles: Sequence[str | None] = ()) -> None:
        """Appends the rows the model and processor gained since this catalog was computed (e.g. `add_items`)."""
        start = self.num_items + 1
        new_rows = torch.arange(start, model.config.num_items + 1, device=model.device)
        if not len(new_rows):
            return
        with eval_mode(model):
            vectors = model.scoring_vectors(new_rows).float().cpu()
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


# ----------------------------------------------------------------------------------------------------------------
# FAISS
# ----------------------------------------------------------------------------------------------------------------
def build_faiss_index(
    vectors: torch.Tensor,
    kind: str = "flat",
    nlist: int | None = None,
    nprobe: int | None = None,
    hnsw_m: int = 32,
    ef_search: int = 128,
):
    """An inner-product FAISS index over `vectors` (rows of catalog items, padding excluded) and its settings.

    `flat` is exact; `ivf` clusters into `nlist` lists (default `4 sqrt(N)`, at least 39 training points per list)
    and searches `nprobe` of them; `hnsw` is a graph with `hnsw_m` links per node searched with `ef_search`.
    """
    import faiss

    data = vectors.detach().float().cpu().contiguous().numpy()
    count, dim = data.shape
    info = {"kind": kind}
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "ivf":
        nlist = nlist or max(1, min(int(4 * math.sqrt(count)), count // 39))
        nprobe = min(nprobe or max(1, min(32, nlist // 4)), nlist)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(data)
        info.update(nlist=nlist, nprobe=nprobe)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        info.update(hnsw_m=hnsw_m, ef_search=ef_search)
    else:
        raise ValueError(f"faiss index kind must be one of {FAISS_KINDS[1:]}, got {kind!r}")
    index.add(data)
    set_search_parameters(index, info)
    return index, info


def set_search_parameters(index, info: Mapping) -> None:
    import faiss

    if "nprobe" in info:
        faiss.extract_index_ivf(index).nprobe = int(info["nprobe"])
    if "ef_search" in info:
        index.hnsw.efSearch = int(info["ef_search"])


def faiss_recall_at_k(index, vectors: torch.Tensor, k: int = 10, num_queries: int = 1000, seed: int = 0) -> float:
    """Recall@k of `index` against exact inner-product search over `vectors` (the rows it indexes).

    Queries are normalised sums of two random catalog vectors, a stand-in for interest vectors between items. A
    returned item counts as a hit when its exact score reaches the k-th best exact score, so ties are not misses.
    """
    generator = torch.Generator().manual_seed(seed)
    data = vectors.detach().float().cpu()
    k = min(k, len(data))
    pairs = torch.randint(len(data), (num_queries, 2), generator=generator)
    queries = F.normalize(data[pairs[:, 0]] + data[pairs[:, 1]], dim=-1)
    # the k-th best exact score of each query: a found item that scores at least that well is a hit (ties count)
    rows = torch.arange(len(data)).expand(64, -1)
    kth = torch.cat([top_k(chunk @ data.T, k, rows[: len(chunk)])[1][:, -1] for chunk in queries.split(64)])
    _, found = index.search(queries.contiguous().numpy(), k)
    found = torch.from_numpy(found)
    found_scores = (data[found.clamp(min=0)] * queries.unsqueeze(1)).sum(dim=-1)
    hits = ((found >= 0) & (found_scores >= kth.unsqueeze(1) - 1e-5)).sum()
    return float(hits) / (len(queries) * k)


# ----------------------------------------------------------------------------------------------------------------
# Adding items and building the catalog
# ----------------------------------------------------------------------------------------------------------------
def load_item_encoder(
    model: GenRecModel, name_or_path: str | None = None, encoder_type: str | None = None
) -> ItemEncoder:
    """The encoder named by the model's config (or `name_or_path`), on the model's device, checked against the
    feature sizes the model expects."""
    config = model.config
    if name_or_path is None:
        name_or_path, encoder_type = config.item_encoder_name_or_path, encoder_type or config.item_encoder_type
    if not name_or_path:
        raise ValueError("the model names no item encoder (config.item_encoder_name_or_path); pass one")
    encoder = ItemEncoder.from_pretrained(name_or_path, encoder_type)
    encoder.model.to(model.device)
    expected = (config.text_feature_dim, config.image_feature_dim)
    if (encoder.text_feature_dim, encoder.image_feature_dim) != expected:
        raise ValueError(
            f"item encoder {name_or_path} gives (text, image) features of sizes "
            f"{(encoder.text_feature_dim, encoder.image_feature_dim)}, but the model expects {expected}"
        )
    return encoder


def append_items(
    model: GenRecModel, processor: GenRecProcessor, parent_asins: Sequence[str], features: ItemFeatures
) -> list[int]:
    """Appends items with their content features to the model (content path, no retraining) and the processor."""
    if len(parent_asins) != len(features):
        raise ValueError(f"{len(parent_asins)} parent_asins but {len(features)} feature rows")
    if processor.num_items != model.config.num_items:
        raise ValueError("the processor and the model describe different catalogs; cannot add items")
    indices = model.add_items(**features.as_dict()).tolist()
    if processor.add_items(parent_asins) != indices:
        raise RuntimeError("model and processor assigned different indices to new items")
    return indices


def add_items_to_catalog(
    model: GenRecModel,
    processor: GenRecProcessor,
    items: Sequence[Mapping],
    encoder: ItemEncoder | None = None,
    catalog: ItemCatalog | None = None,
    batch_size: int = 64,
) -> list[int]:
    """Encodes `items` (records with `parent_asin`, text fields, optional `image_path`) through the item encoder and
    appends them to the model, the processor and `catalog`; they are recommendable at once. Returns their indices."""
    items = list(items)
    if not items:
        return []
    encoder = encoder or load_item_encoder(model)
    features = encoder.encode(items, processor, batch_size=batch_size, show_progress=False)
    indices = append_items(model, processor, [item["parent_asin"] for item in items], features)
    if catalog is not None:
        catalog.extend(model, processor, [item.get("title") for item in items])
    return indices


@dataclass
class CatalogBuildResult:
    """What `build_catalog` did. `catalog` is `None` while `complete` is False (stopped by `max_chunks`)."""

    complete: bool
    num_new_items: int
    chunks_done: int
    chunks_total: int
    catalog: ItemCatalog | None = None
    faiss_recall_at_10: float | None = None
    output_dir: Path | None = None


def build_catalog(
    model: GenRecModel,
    processor: GenRecProcessor,
    items=None,
    output_dir: str | Path | None = None,
    encoder: ItemEncoder | None = None,
    chunk_size: int = 4096,
    batch_size: int = 64,
    max_chunks: int | None = None,
    faiss_index: str = "none",
    nlist: int | None = None,
    nprobe: int | None = None,
    hnsw_m: int = 32,
    show_progress: bool = True,
) -> CatalogBuildResult:
    """Builds (or extends) the catalog of a trained model from an item table.

    Items of `items` unknown to the processor are encoded through the item encoder in chunks of `chunk_size` and
    appended with `add_items` to the model and the processor; then the fused vectors of the whole catalog are
    computed, with titles from the table, and optionally a FAISS index with its recall@10 against exact search.
    With `output_dir`, every encoded chunk is saved as it finishes (a rerun resumes after the last one), and the
    extended model, processor and catalog files are saved there at the end. `max_chunks` stops after that many newly
    encoded chunks, returning `complete=False` (the model is then left unchanged).
    """
    if faiss_index not in FAISS_KINDS:
        raise ValueError(f"faiss_index must be one of {FAISS_KINDS}, got {faiss_index!r}")
    output_dir = Path(output_dir) if output_dir is not None else None
    table = load_item_table(items) if items is not None else []
    asins = [str(a) for a in _column(table, "parent_asin")]
    titles = dict(zip(asins, _column(table, "title")))
    positions, seen = [], set()
    for position, asin in enumerate(asins):
        if asin not in processor and asin not in seen and asin != PAD_ITEM:
            positions.append(position)
            seen.add(asin)
    new_asins = [asins[p] for p in positions]
    chunks = [positions[i : i + chunk_size] for i in range(0, len(positions), chunk_size)]
    logger.info(
        "%d items in the table, %d new to the catalog of %d items", len(asins), len(new_asins), processor.num_items
    )

    parts = _encode_chunks(
        model, table, new_asins, chunks, processor, encoder, output_dir, batch_size, max_chunks, show_progress
    )
    if len(parts) < len(chunks):
        return CatalogBuildResult(False, len(new_asins), len(parts), len(chunks), output_dir=output_dir)
    if new_asins:
        features = ItemFeatures(
            *(
                torch.cat([getattr(p, name) for p in parts])
                for name in ("text_features", "image_features", "image_mask")
            )
        )
        append_items(model, processor, new_asins, features)
    if output_dir is not None:
        titles = {**_saved_titles(output_dir), **{a: t for a, t in titles.items() if t}}
        if new_asins or not (output_dir / "config.json").exists():  # the catalog always sits beside its model
            model.save_pretrained(output_dir)
            processor.save_pretrained(output_dir)
    catalog = ItemCatalog.from_model(model, processor, titles)
    recall = None
    if faiss_index != "none":
        catalog.index, catalog.index_info = build_faiss_index(
            catalog.embeddings[1:], faiss_index, nlist, nprobe, hnsw_m
        )
        recall = faiss_recall_at_k(catalog.index, catalog.embeddings[1:])
        catalog.index_info["recall_at_10"] = recall
        logger.info("FAISS %s index: recall@10 against exact search %.4f", faiss_index, recall)
    if output_dir is not None:
        catalog.save(output_dir)
        shutil.rmtree(output_dir / WORK_DIR, ignore_errors=True)
    return CatalogBuildResult(True, len(new_asins), len(chunks), len(chunks), catalog, recall, output_dir)


def _encode_chunks(
    model, table, new_asins, chunks, processor, encoder, output_dir, batch_size, max_chunks, show_progress
) -> list[ItemFeatures]:
    """Features of every chunk, read from the work folder where a previous run saved them; stops after `max_chunks`
    newly encoded chunks."""
    work = output_dir / WORK_DIR if output_dir is not None else None
    if work is not None:
        manifest = {
            "new_items": hashlib.sha256("\n".join(new_asins).encode()).hexdigest(),
            "chunk_sizes": [len(c) for c in chunks],
            "encoder": model.config.item_encoder_name_or_path,
        }
        manifest_path = work / "manifest.json"
        if manifest_path.exists() and json.loads(manifest_path.read_text()) != manifest:
            logger.warning("discarding the partial catalog build in %s: it was for other items or settings", work)
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(json.dumps(manifest))
    parts, encoded = [], 0
    done = sum((work / f"chunk-{i:06d}.safetensors").exists() for i in range(len(chunks))) if work else 0
    if done:
        logger.info("resuming: %d of %d chunks already encoded in %s", done, len(chunks), work)
    progress = tqdm(
        total=len(new_asins), desc="Encoding new items", unit="item", disable=not (show_progress and new_asins)
    )
    for number, chunk in enumerate(chunks):
        path = work / f"chunk-{number:06d}.safetensors" if work else None
        if path is not None and path.exists():
            parts.append(ItemFeatures(**load_file(path)))
        else:
            if max_chunks is not None and encoded >= max_chunks:
                break
            encoder = encoder or load_item_encoder(model)
            parts.append(encoder.encode(_take(table, chunk), processor, batch_size=batch_size, show_progress=False))
            encoded += 1
            if path is not None:
                partial = path.with_suffix(".partial")
                save_file({k: v.contiguous() for k, v in parts[-1].as_dict().items()}, partial)
                partial.rename(path)  # a chunk file exists only once it is complete
        progress.update(len(chunk))
    progress.close()
    return parts


def _saved_titles(folder: Path) -> dict[str, str]:
    path = folder / CATALOG_METADATA
    if not path.exists():
        return {}
    metadata = json.loads(path.read_text())
    return {a: t for a, t in zip(metadata["parent_asins"], metadata["titles"]) if t}


__all__ = [
    "CATALOG_FAISS",
    "CATALOG_METADATA",
    "CATALOG_WEIGHTS",
    "CatalogBuildResult",
    "ItemCatalog",
    "add_items_to_catalog",
    "append_items",
    "build_catalog",
    "build_faiss_index",
    "faiss_recall_at_k",
    "load_item_encoder",
    "eval_mode",
    "load_item_table",
]

"""Building a trained model's catalog from an item table, resumably.

Items of the table that the model has never seen are encoded through the model's item encoder in chunks, each chunk
saved as it finishes under `.item_catalog_work/`; a rerun after an interruption encodes only the missing chunks. Under
`accelerate launch` or `torchrun` the processes share the chunks out (`genrec_hf.sharded_encoding`) and the main
process builds and saves the catalog.
"""

import hashlib
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._atomic import commit_staged, finish_staged, staging_folder
from .._distributed import process_state
from ..data.items import item_column, load_item_table, select_items
from ..encoders import ItemEncoder, ItemFeatures
from ..modeling_genrec import GenRecModel
from ..modeling_genrec_generative import GenRecForSemanticIDGeneration
from ..processing_genrec import PAD_ITEM, GenRecProcessor
from ..sharded_encoding import encode_chunks
from .catalog import CATALOG_FAISS, ItemCatalog, saved_titles
from .faiss_index import FAISS_KINDS, build_faiss_index, faiss_recall_at_k
from .items import append_items, load_item_encoder

logger = logging.getLogger(__name__)

WORK_DIR = ".item_catalog_work"


@dataclass
class CatalogBuildOptions:
    """How `build_catalog` encodes new items and indexes the catalog.

    `chunk_size` new items make one saved chunk (the unit of resumption), encoded `batch_size` items per forward;
    `max_chunks` stops after that many newly encoded chunks. `faiss_index` is one of `FAISS_KINDS`, with `nlist`,
    `nprobe` (IVF) and `hnsw_m` (HNSW) passed to `build_faiss_index`.
    """

    chunk_size: int = 4096
    batch_size: int = 64
    max_chunks: int | None = None
    faiss_index: str = "none"
    nlist: int | None = None
    nprobe: int | None = None
    hnsw_m: int = 32
    show_progress: bool = True

    def __post_init__(self):
        if self.faiss_index not in FAISS_KINDS:
            raise ValueError(f"faiss_index must be one of {FAISS_KINDS}, got {self.faiss_index!r}")
        if self.chunk_size < 1 or self.batch_size < 1:
            raise ValueError(f"chunk_size and batch_size must be >= 1, got {self.chunk_size} and {self.batch_size}")


@dataclass
class CatalogBuildResult:
    """What `build_catalog` did. `catalog` is `None` while `complete` is False (stopped by `max_chunks`), and on every
    process but the main one."""

    complete: bool
    num_new_items: int
    chunks_done: int
    chunks_total: int
    catalog: ItemCatalog | None = None
    faiss_recall_at_10: float | None = None
    output_dir: Path | None = None


def build_catalog(
    model: GenRecModel | GenRecForSemanticIDGeneration,
    processor: GenRecProcessor,
    items=None,
    output_dir: str | Path | None = None,
    encoder: ItemEncoder | None = None,
    options: CatalogBuildOptions | None = None,
) -> CatalogBuildResult:
    """Builds (or extends) the catalog of a trained model from an item table (anything `load_item_table` reads).

    Items of `items` unknown to the processor are encoded through `encoder` (default: the model's item encoder) in
    chunks and appended with `add_items` to the model and the processor; then the fused vectors of the whole catalog
    are computed, with titles from the table, and optionally a FAISS index with its recall@10 against exact search.
    With `output_dir`, every encoded chunk is saved as it finishes (a rerun resumes after the last one), and the
    extended model, processor and catalog files are moved there together at the end. When `options.max_chunks` stops the
    build early, the result has `complete=False` and the model is left unchanged.

    Under `accelerate launch` or `torchrun`, call it on every process with the same arguments: each process encodes
    its share of the chunks with the encoder on its own device (`output_dir` is needed to exchange them), and the main
    process alone extends its model, builds the catalog and writes the folder; the other processes return without a
    catalog and leave their model unchanged.
    """
    options = options or CatalogBuildOptions()
    output_dir = Path(output_dir) if output_dir is not None else None
    main_process = process_state().is_main_process
    if output_dir is not None and main_process:
        finish_staged(output_dir)
    table = load_item_table(items) if items is not None else []
    asins = [str(a) for a in item_column(table, "parent_asin")]
    titles = dict(zip(asins, item_column(table, "title")))
    positions = _new_item_positions(asins, processor)
    new_asins = [asins[p] for p in positions]
    chunks = [positions[i : i + options.chunk_size] for i in range(0, len(positions), options.chunk_size)]
    logger.info(
        "%d items in the table, %d new to the catalog of %d items", len(asins), len(new_asins), processor.num_items
    )

    work = output_dir / WORK_DIR if output_dir is not None else None
    manifest = {
        "new_items": hashlib.sha256("\n".join(new_asins).encode()).hexdigest(),
        "encoder": model.config.item_encoder_name_or_path,
    }
    encode = _chunk_encoder(model, processor, encoder, table, options.batch_size)
    encoded = encode_chunks(chunks, encode, work, manifest, options.max_chunks, options.show_progress)
    if not (encoded.complete and main_process):
        return CatalogBuildResult(
            encoded.complete, len(new_asins), encoded.chunks_done, len(chunks), output_dir=output_dir
        )
    if new_asins:
        append_items(model, processor, new_asins, encoded.features)
    if output_dir is not None:
        titles = {**saved_titles(output_dir), **{a: t for a, t in titles.items() if t}}
    catalog = ItemCatalog.from_model(model, processor, titles)
    recall = None
    if options.faiss_index != "none" and isinstance(model, GenRecForSemanticIDGeneration):
        raise ValueError("a generative model ranks by beam search over its semantic IDs: use --faiss_index none")
    if options.faiss_index != "none":
        catalog.index, catalog.index_info = build_faiss_index(
            catalog.embeddings[1:], options.faiss_index, options.nlist, options.nprobe, options.hnsw_m
        )
        recall = faiss_recall_at_k(catalog.index, catalog.embeddings[1:])
        catalog.index_info["recall_at_10"] = recall
        logger.info("FAISS %s index: recall@10 against exact search %.4f", options.faiss_index, recall)
    if output_dir is not None:
        # Model, processor and catalog are staged, then moved into place together (a kill never leaves a half-written
        # or mismatched file; an interrupted move is finished by the next load).
        staging = staging_folder(output_dir)
        if new_asins or not (output_dir / "config.json").exists():  # the catalog always sits beside its model
            model.save_pretrained(staging)
            processor.save_pretrained(staging)
        catalog.save(staging)
        commit_staged(output_dir)
        if catalog.index is None:
            (output_dir / CATALOG_FAISS).unlink(missing_ok=True)
        shutil.rmtree(output_dir / WORK_DIR, ignore_errors=True)
    return CatalogBuildResult(True, len(new_asins), len(chunks), len(chunks), catalog, recall, output_dir)


def _new_item_positions(asins: Sequence[str], processor: GenRecProcessor) -> list[int]:
    """Table positions of the first occurrence of every `parent_asin` the processor does not know."""
    positions, seen = [], set()
    for position, asin in enumerate(asins):
        if asin not in processor and asin not in seen and asin != PAD_ITEM:
            positions.append(position)
            seen.add(asin)
    return positions


def _chunk_encoder(
    model: GenRecModel,
    processor: GenRecProcessor,
    encoder: ItemEncoder | None,
    table: Sequence[Mapping],
    batch_size: int,
) -> Callable[[Sequence[int]], ItemFeatures]:
    """Encodes a chunk of table positions; the model's item encoder is loaded when the first chunk needs it."""

    def encode(positions: Sequence[int]) -> ItemFeatures:
        nonlocal encoder
        encoder = encoder or load_item_encoder(model)
        return encoder.encode(select_items(table, positions), processor, batch_size=batch_size, show_progress=False)

    return encode


__all__ = ["WORK_DIR", "CatalogBuildOptions", "CatalogBuildResult", "build_catalog"]

"""`genrec-precompute` / `scripts/precompute_embeddings.py`: build or extend the item catalog of a trained model.

Under `accelerate launch` or `torchrun` every process encodes its share of the new items on its own device and the
main process writes the model and catalog (`genrec_hf.inference.build`); the summary is printed by the main process.

Exit status: 0: the catalog is complete and saved; 3: stopped by `--max_chunks` (rerun the same command to resume);
2: bad arguments, or the model or item table could not be read.
"""

import json
import logging
import sys
from dataclasses import dataclass, field

from .._distributed import process_state
from ..inference.build import CatalogBuildOptions, build_catalog
from ..inference.faiss_index import FAISS_KINDS
from ..inference.items import load_item_encoder
from ..training.arguments import item_encoder_dtype_field
from ._cli import CommandParser, check_installed, check_paths
from ._inference import EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK, load_model_and_processor, setup_logging

logger = logging.getLogger("genrec_hf.inference")


@dataclass
class PrecomputeArguments:
    model: str = field(metadata={"help": "Folder of a trained model (save_pretrained, with its processor)."})
    items: str | None = field(
        default=None,
        metadata={
            "help": "Item table: JSON / JSON-lines file (.gz ok) or a Dataset folder (save_to_disk, or a "
            "prepared-data folder with items/). Items not in the catalog are encoded and added."
        },
    )
    output_dir: str | None = field(
        default=None, metadata={"help": "Where the extended model and the catalog go; defaults to --model (in place)."}
    )
    item_encoder: str | None = field(
        default=None, metadata={"help": "Encoder folder or Hub id overriding the model config's (same feature sizes)."}
    )
    item_encoder_dtype: str = item_encoder_dtype_field()
    chunk_size: int = field(default=4096, metadata={"help": "New items per saved chunk (the unit of resumption)."})
    batch_size: int = field(default=64, metadata={"help": "Items per encoder forward pass."})
    max_chunks: int | None = field(
        default=None, metadata={"help": "Encode at most this many chunks in this run, then stop (exit 3)."}
    )
    faiss_index: str = field(
        default="none", metadata={"help": "Build a FAISS index of the catalog.", "choices": list(FAISS_KINDS)}
    )
    nlist: int | None = field(default=None, metadata={"help": "IVF lists (default 4 sqrt(N))."})
    nprobe: int | None = field(default=None, metadata={"help": "IVF lists searched per query (default <= 32)."})
    hnsw_m: int = field(default=32, metadata={"help": "HNSW links per node."})
    device: str = field(
        default="auto",
        metadata={
            "help": "cpu, cuda, or auto: the process's accelerator (each process its own under accelerate launch or "
            "torchrun), else the CPU."
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(PrecomputeArguments)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    check_paths(parser, "--model", args.model, "folder")
    check_paths(parser, "--items", args.items)
    if args.faiss_index != "none":
        check_installed(parser, "faiss", f"--faiss_index {args.faiss_index}", "'genrec_hf[faiss]' (or faiss-cpu)")
    setup_logging()
    state = process_state()
    try:
        with state.main_process_first():  # the main process finishes an interrupted save before the others read
            model, processor = load_model_and_processor(args.model, args.device)
        encoder = None  # build_catalog loads the model's own encoder when there are new items
        if args.item_encoder or args.item_encoder_dtype != "float32":
            encoder = load_item_encoder(model, args.item_encoder, dtype=args.item_encoder_dtype)
        result = build_catalog(
            model,
            processor,
            args.items,
            output_dir=args.output_dir or args.model,
            encoder=encoder,
            options=CatalogBuildOptions(
                chunk_size=args.chunk_size,
                batch_size=args.batch_size,
                max_chunks=args.max_chunks,
                faiss_index=args.faiss_index,
                nlist=args.nlist,
                nprobe=args.nprobe,
                hnsw_m=args.hnsw_m,
            ),
        )
    except (OSError, ValueError) as error:
        logger.error("precompute failed: %s", error)
        return EXIT_FAILED
    if not state.is_main_process:  # it encoded its share of the items; the main process reports
        return EXIT_OK if result.complete else EXIT_INCOMPLETE
    if not result.complete:
        print(
            f"stopped after {result.chunks_done} of {result.chunks_total} chunks of new items; "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    summary = {
        "num_items": result.catalog.num_items,
        "new_items": result.num_new_items,
        "dim": result.catalog.embeddings.shape[1],
        "output_dir": str(result.output_dir),
        "faiss": result.catalog.index_info or None,
    }
    print(json.dumps(summary))
    return EXIT_OK


__all__ = ["PrecomputeArguments", "main"]

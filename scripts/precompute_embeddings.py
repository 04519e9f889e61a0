#!/usr/bin/env python
"""Builds or extends the item catalog of a trained model (see `genrec_hf.inference.cli` for options and exit codes).

Usage:

    python scripts/precompute_embeddings.py --model outputs/model --items items.jsonl --faiss_index ivf
"""

from genrec_hf.inference.cli import precompute_main

if __name__ == "__main__":
    raise SystemExit(precompute_main())

#!/usr/bin/env python
"""Builds or extends the item catalog of a trained model (see `genrec_hf.commands.precompute` for options and exit
codes).

Usage:

    python scripts/precompute_embeddings.py --model outputs/model --items items.jsonl --faiss_index ivf
"""

from genrec_hf.commands.precompute import main

if __name__ == "__main__":
    raise SystemExit(main())

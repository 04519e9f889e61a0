#!/usr/bin/env python
"""Top-k next items for every user of a history file, as JSON lines (format and exit codes:
`genrec_hf.inference.cli`).

    python scripts/recommend.py --model outputs/model --history test_user_history.txt --k 10 \
        --output outputs/inference_results.txt
"""

from genrec_hf.inference.cli import recommend_main

if __name__ == "__main__":
    raise SystemExit(recommend_main())

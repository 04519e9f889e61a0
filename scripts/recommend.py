#!/usr/bin/env python
"""Top-k next items for every user of a history file, as JSON lines (format and exit codes:
`genrec_hf.commands.recommend`).

    python scripts/recommend.py --model outputs/model --history test_user_history.txt --k 10 \
        --output outputs/inference_results.txt
"""

from genrec_hf.commands.recommend import main

if __name__ == "__main__":
    raise SystemExit(main())

"""Publish a trained GenRec model folder to the Hugging Face Hub (or `--dry_run FOLDER` to only write it).

Usage:

    python scripts/push_to_hub.py --model outputs/model --repo_id me/genrec-beauty [--private] [--revision R]
        [--create_pr] [--dry_run FOLDER] [--token_env NAME]
"""

from genrec_hf.commands.push_to_hub import main

if __name__ == "__main__":
    raise SystemExit(main())

"""Prepare Amazon Reviews 2023 files for training: `python scripts/prepare_data.py --help`."""

from genrec_hf.commands.prepare_data import main

if __name__ == "__main__":
    main()

"""Prepare Amazon Reviews 2023 files for training: `python scripts/prepare_data.py --help`."""

from genrec_hf.data.cli import prepare_data_main

if __name__ == "__main__":
    prepare_data_main()

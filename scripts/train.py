"""Train, evaluate and save a GenRec model: `python`, `accelerate launch` or `torchrun scripts/train.py --help`."""

from genrec_hf.commands.train import main

if __name__ == "__main__":
    main()

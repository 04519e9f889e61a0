"""Console scripts, one module per command, each a `main(argv=None)` over `HfArgumentParser` dataclasses:
`train`, `prepare_data`, `precompute`, `recommend`, `push_to_hub` (see `setup.cfg`; `scripts/*.py` are thin fronts).

The top of the layering: a command may import every other part of genrec_hf and holds no logic of its own.
"""

"""This process's place in a launch (`accelerate launch`, `torchrun`, or a plain `python`)."""

import torch
from accelerate import PartialState
from accelerate.utils import parse_flag_from_env


def process_state() -> PartialState:
    """accelerate's `PartialState`, initialising the process group under a launcher: over the accelerators where
    there are some, over the CPU (gloo) where there are none or `accelerate launch --cpu` asked for it (a bare
    `PartialState()` would leave CPU processes unaware of each other). One process alone is a state of one process.
    """
    return PartialState(cpu=not torch.accelerator.is_available() or parse_flag_from_env("ACCELERATE_USE_CPU"))


__all__ = ["process_state"]

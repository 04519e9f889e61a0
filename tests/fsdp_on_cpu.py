"""Runs a script (`python tests/fsdp_on_cpu.py SCRIPT ARGS...`, under `accelerate launch --config_file
configs/accelerate/fsdp.yaml`) with accelerate's FSDP turned on for CPU processes, so that the FSDP config is tested
on CI machines without GPUs.

torch's FSDP2 runs on CPU with gloo, but accelerate turns FSDP on only for accelerator devices: on CPU processes its
`AcceleratorState` leaves the distributed type `MULTI_CPU` and the run silently falls back to DDP. This sets the type
to FSDP where accelerate would have on a GPU, and prints, at every ranking evaluation, how many FSDP units the model
has, so a test can tell that the run was sharded.
"""

import runpy
import sys

from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType

import genrec_hf.training.trainer as trainer_module

accelerator_state_init = AcceleratorState.__init__


def init_with_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    accelerator_state_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin


unsharded = trainer_module.unsharded


def reporting_unsharded(model):
    units = sum(isinstance(module, trainer_module.FSDPModule) for module in model.modules())
    print(f"ranking evaluation of a model with {units} FSDP units", flush=True)
    return unsharded(model)


AcceleratorState.__init__ = init_with_fsdp_on_cpu
trainer_module.unsharded = reporting_unsharded

if __name__ == "__main__":
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")

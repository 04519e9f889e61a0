"""`import genrec_hf` registers the Auto classes and the pipeline, and imports neither the Hub, training nor
evaluation code, nor `datasets`, `matplotlib` or `faiss`, until one of their names is used."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ["datasets", "faiss", "genrec_hf.commands", "genrec_hf.evaluation", "genrec_hf.hub", "genrec_hf.training",
         "matplotlib"]  # fmt: skip

CHILD = f"""
import json, sys
import genrec_hf
from transformers import AutoConfig, AutoModel
from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
from transformers.pipelines import PIPELINE_REGISTRY

loaded = sorted(name for name in {HEAVY!r} if name in sys.modules)
registered = [
    type(AutoConfig.for_model("genrec")).__name__,
    AutoModel._model_mapping[genrec_hf.GenRecConfig].__name__,
    PROCESSOR_MAPPING[genrec_hf.GenRecConfig].__name__,
    "next-item-recommendation" in PIPELINE_REGISTRY.get_supported_tasks(),
]
publish = genrec_hf.publish
print(json.dumps({{"loaded": loaded, "registered": registered, "hub_after_use": "genrec_hf.hub" in sys.modules,
                  "publish": publish.__module__, "train": genrec_hf.train.__module__}}))
"""


def test_import_is_light_and_registers_everything():
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path}
    child = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["loaded"] == [], f"imported eagerly: {result['loaded']}"
    assert result["registered"] == ["GenRecConfig", "GenRecModel", "GenRecProcessor", True]
    assert result["hub_after_use"] is True
    assert result["publish"] == "genrec_hf.hub.publish" and result["train"] == "genrec_hf.training.run"

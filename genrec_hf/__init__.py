"""genrec_hf: a Hugging Face-native multimodal next-item recommender.

Importing the package registers `GenRecConfig`, `GenRecModel` and `GenRecProcessor` (and the generative head's
`GenRecGenerativeConfig` and `GenRecForSemanticIDGeneration`) with the transformers Auto classes, so
`AutoModel.from_pretrained(folder)` works without `trust_remote_code`, and registers
`pipeline("next-item-recommendation")`. Everything else is imported on first use: `genrec_hf.publish`,
`genrec_hf.train`, `genrec_hf.EvaluationReport` or `genrec_hf.hub` load the Hub, training or evaluation code (and
`datasets`, `matplotlib`, `faiss`) only then.

Layers, each importing only those before it: `data` -> item encoders -> model (`*_genrec.py`, `ranking.py`,
`sequences.py`) -> `training` / `evaluation` -> `inference` -> `hub` -> `commands`.
"""

from typing import TYPE_CHECKING

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoProcessor

from ._lazy import lazy_attributes
from .configuration_genrec import GenRecConfig
from .configuration_genrec_generative import GenRecGenerativeConfig
from .inference.pipeline import NextItemRecommendationPipeline  # registers pipeline("next-item-recommendation")
from .modeling_genrec import GenRecModel, GenRecOutput, GenRecPreTrainedModel, GenRecRecommendations
from .modeling_genrec_generative import GenRecForSemanticIDGeneration
from .processing_genrec import GenRecProcessor, UnknownItemError

if TYPE_CHECKING:
    from .encoders import DEFAULT_CLIP, ItemEncoder, ItemFeatures
    from .evaluation import EvaluationReport, RankingEvaluator
    from .hub import build_model_card, publish, save_for_hub
    from .training import GenRecTrainer, train

__version__ = "0.1.0"

AutoConfig.register(GenRecConfig.model_type, GenRecConfig, exist_ok=True)
AutoModel.register(GenRecConfig, GenRecModel, exist_ok=True)
AutoProcessor.register(GenRecConfig, GenRecProcessor, exist_ok=True)
AutoConfig.register(GenRecGenerativeConfig.model_type, GenRecGenerativeConfig, exist_ok=True)
AutoModel.register(GenRecGenerativeConfig, GenRecForSemanticIDGeneration, exist_ok=True)
AutoModelForCausalLM.register(GenRecGenerativeConfig, GenRecForSemanticIDGeneration, exist_ok=True)
AutoProcessor.register(GenRecGenerativeConfig, GenRecProcessor, exist_ok=True)

# name -> the submodule that defines it, imported when the name is first read
_LAZY_ATTRIBUTES = {
    "DEFAULT_CLIP": "encoders",
    "ItemEncoder": "encoders",
    "ItemFeatures": "encoders",
    "EvaluationReport": "evaluation",
    "RankingEvaluator": "evaluation",
    "build_model_card": "hub",
    "publish": "hub",
    "save_for_hub": "hub",
    "GenRecTrainer": "training",
    "train": "training",
}
_LAZY_SUBMODULES = ("commands", "data", "evaluation", "hub", "inference", "training")


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY_ATTRIBUTES, _LAZY_SUBMODULES)

__all__ = [
    "DEFAULT_CLIP",
    "EvaluationReport",
    "GenRecConfig",
    "GenRecForSemanticIDGeneration",
    "GenRecGenerativeConfig",
    "GenRecModel",
    "GenRecOutput",
    "GenRecPreTrainedModel",
    "GenRecProcessor",
    "GenRecRecommendations",
    "GenRecTrainer",
    "ItemEncoder",
    "ItemFeatures",
    "NextItemRecommendationPipeline",
    "RankingEvaluator",
    "UnknownItemError",
    "build_model_card",
    "publish",
    "save_for_hub",
    "train",
]

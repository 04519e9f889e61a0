"""genrec_hf: a Hugging Face-native multimodal next-item recommender.

Importing the package registers `GenRecConfig`, `GenRecModel` and `GenRecProcessor` with the transformers Auto
classes, so `AutoModel.from_pretrained(folder)` works without `trust_remote_code`.
"""

from transformers import AutoConfig, AutoModel, AutoProcessor

from .configuration_genrec import GenRecConfig
from .encoders import DEFAULT_CLIP, ItemEncoder, ItemFeatures
from .hub import build_model_card, publish, save_for_hub
from .inference.pipeline import NextItemRecommendationPipeline  # registers pipeline("next-item-recommendation")
from .modeling_genrec import GenRecModel, GenRecOutput, GenRecPreTrainedModel, GenRecRecommendations
from .processing_genrec import GenRecProcessor, UnknownItemError

__version__ = "0.1.0"

AutoConfig.register(GenRecConfig.model_type, GenRecConfig, exist_ok=True)
AutoModel.register(GenRecConfig, GenRecModel, exist_ok=True)
AutoProcessor.register(GenRecConfig, GenRecProcessor, exist_ok=True)

__all__ = [
    "build_model_card",
    "publish",
    "save_for_hub",
    "DEFAULT_CLIP",
    "GenRecConfig",
    "GenRecModel",
    "GenRecOutput",
    "GenRecPreTrainedModel",
    "GenRecProcessor",
    "GenRecRecommendations",
    "ItemEncoder",
    "ItemFeatures",
    "NextItemRecommendationPipeline",
    "UnknownItemError",
]

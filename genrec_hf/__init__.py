"""genrec_hf: a Hugging Face-native multimodal next-item recommender."""

__version__ = "0.1.0"

"""The data layer: Amazon Reviews 2023 files -> validated, deduplicated, k-core, leak-free sequence splits."""

from .images import FetchReport, fetch_images
from .prepare import PreparedData, load_prepared, prepare_dataset
from .validation import ValidationReport

__all__ = ["FetchReport", "PreparedData", "ValidationReport", "fetch_images", "load_prepared", "prepare_dataset"]

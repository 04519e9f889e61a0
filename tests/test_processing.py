"""GenRecProcessor: histories -> padded ids, the item vocabulary, the item-text template with the real CLIP
tokenizer, and the save_pretrained / from_pretrained round trip (also through AutoProcessor)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor

import genrec_hf  # noqa: F401  (registers AutoProcessor)
from genrec_hf import GenRecProcessor, UnknownItemError

BOS, EOS = 49406, 49407  # <|startoftext|>, <|endoftext|> in the real CLIP vocabulary


# -------------------------------------------------------------------------------------------------- histories
def test_histories_are_right_padded(tiny_processor):
    batch = tiny_processor([["I001", "I002", "I003"], ["I010"]])
    assert batch["item_ids"].tolist() == [[1, 2, 3], [10, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["item_ids"].dtype == torch.long
    assert batch["num_unknown"].tolist() == [0, 0]


def test_long_history_keeps_the_most_recent_items(tiny_processor):
    assert tiny_processor.max_seq_len == 7
    history = [f"I{i:03d}" for i in range(1, 13)]  # 12 items, oldest first
    batch = tiny_processor([history, ["I020"]])
    assert batch["item_ids"].tolist() == [list(range(6, 13)), [20, 0, 0, 0, 0, 0, 0]]


def test_duplicates_are_kept(tiny_processor):
    batch = tiny_processor([["I004", "I004", "I002", "I004"]])
    assert batch["item_ids"].tolist() == [[4, 4, 2, 4]]


def test_empty_histories(tiny_processor):
    batch = tiny_processor([[], ["I005", "I006"]])
    assert batch["item_ids"].tolist() == [[0, 0], [5, 6]]
    assert batch["attention_mask"][0].sum() == 0
    only_empty = tiny_processor([[], []])
    assert only_empty["item_ids"].shape == (2, 1) and only_empty["attention_mask"].sum() == 0


def test_all_unknown_history_with_skip(tiny_processor, caplog):
    batch = tiny_processor([["NOPE1", "NOPE2"], ["I001", "NOPE3", "I002"]], unknown_items="skip")
    assert batch["item_ids"].tolist() == [[0, 0], [1, 2]]
    assert batch["attention_mask"].tolist() == [[0, 0], [1, 1]]
    assert batch["num_unknown"].tolist() == [2, 1]
    assert "left out 2 unknown items" in caplog.text


def test_unknown_parent_asin_raises_naming_it(tiny_processor):
    with pytest.raises(UnknownItemError, match="'B00UNKNOWN'.*history 1") as error:
        tiny_processor([["I001"], ["I002", "B00UNKNOWN"]])
    assert error.value.parent_asin == "B00UNKNOWN"
    assert isinstance(error.value, KeyError)
    with pytest.raises(UnknownItemError, match="PAD"):
        tiny_processor([["[PAD]"]])  # the padding token is not an item


def test_bad_history_arguments(tiny_processor):
    with pytest.raises(ValueError, match="unknown_items"):
        tiny_processor([["I001"]], unknown_items="ignore")
    with pytest.raises(TypeError, match="history 0 is a string"):
        tiny_processor(["I001"])
    with pytest.raises(ValueError, match="histories"):
        tiny_processor()


def test_index_histories_keeps_the_recent_window_and_reports_unknown_items(tiny_processor):
    history = ["I001", "NOPE", *(f"I{i:03d}" for i in range(2, 11)), "NOPE", "I002"]
    (indexed,) = tiny_processor.index_histories([history], unknown_items="skip")
    assert indexed.all_item_ids == [*range(1, 11), 2]  # every known item, repeats included
    assert indexed.item_ids == [5, 6, 7, 8, 9, 10, 2] and indexed.truncated == 4  # the most recent max_seq_len
    assert indexed.unknown_items == ["NOPE", "NOPE"]
    (short,) = tiny_processor.index_histories([history], unknown_items="skip", max_len=3)
    assert short.item_ids == [9, 10, 2] and short.truncated == 8
    with pytest.raises(UnknownItemError, match="'NOPE' in history of user 'u7'"):
        tiny_processor.index_histories([["I001"], history], names=["history of user 'u1'", "history of user 'u7'"])


def test_pad_histories_to_multiple(tiny_processor):
    padded = GenRecProcessor.pad_histories([[1, 2, 3], [4]], pad_to_multiple_of=4)
    assert padded["item_ids"].tolist() == [[1, 2, 3, 0], [4, 0, 0, 0]]


# -------------------------------------------------------------------------------------------------- vocabulary
def test_item_vocabulary(tiny_processor):
    assert tiny_processor.num_items == 50 and tiny_processor.item_vocab[0] == "[PAD]"
    assert tiny_processor.item_to_index("I050") == 50 and tiny_processor.index_to_item(50) == "I050"
    assert "I001" in tiny_processor and "[PAD]" not in tiny_processor and "X" not in tiny_processor
    with pytest.raises(IndexError):
        tiny_processor.index_to_item(0)
    with pytest.raises(UnknownItemError, match="'X'"):
        tiny_processor.item_to_index("X")
    assert tiny_processor.add_items(["NEW1", "NEW2"]) == [51, 52]
    assert tiny_processor.num_items == 52 and tiny_processor([["NEW2"]])["item_ids"].tolist() == [[52]]
    with pytest.raises(ValueError, match="already in the catalog"):
        tiny_processor.add_items(["I003"])
    with pytest.raises(ValueError, match="duplicate parent_asin"):
        GenRecProcessor(item_vocab=["A", "B", "A"])


# -------------------------------------------------------------------------------------------------- item text
ITEM = {
    "title": "Amazon.com Gift Card",
    "store": "Amazon",
    "categories": ["Gift Cards", "Occasions"],
    "features": ["No fees", "Never expires"],
    "description": ["Redeemable toward millions of items"],
    "details": '{"Brand": "Amazon", "Package Dimensions": "4 x 3 in"}',
    "price": 25.0,
}


def test_text_template_renders_fields_in_order(tiny_processor):
    text = tiny_processor.render_item_text(ITEM)
    assert text == (
        "Amazon.com Gift Card. Store: Amazon. Categories: Gift Cards, Occasions. Features: No fees, Never expires. "
        "Description: Redeemable toward millions of items. Details: Brand: Amazon; Package Dimensions: 4 x 3 in"
    )
    tiny_processor.text_fields = ["features", "title", "price"]
    assert (
        tiny_processor.render_item_text(ITEM) == "Features: No fees, Never expires. Amazon.com Gift Card. Price: 25.0"
    )
    # empty and missing fields are left out
    assert tiny_processor.render_item_text({"title": "  X  ", "features": [], "price": None}) == "X"


def test_text_is_truncated_to_the_token_budget_with_the_real_clip_tokenizer(tiny_processor):
    tokenizer = tiny_processor.tokenizer
    assert tokenizer("a photo of a cat")["input_ids"] == [BOS, 320, 1125, 539, 320, 2368, EOS]  # real CLIP BPE
    tiny_processor.text_max_length = 12
    long_item = {**ITEM, "description": ["lots of words " * 100]}
    short_item = {"title": "red wool scarf"}
    inputs = tiny_processor.encode_items([long_item, short_item], with_images=False)
    assert inputs["input_ids"].shape == (2, 12)
    long_ids = inputs["input_ids"][0].tolist()
    title_ids = tokenizer("Amazon.com Gift Card")["input_ids"][1:-1]
    assert long_ids[0] == BOS and long_ids[-1] == EOS
    assert long_ids[1 : 1 + len(title_ids)] == title_ids  # the head of the text (the title) survives truncation
    assert inputs["attention_mask"][1].sum() == len(tokenizer("red wool scarf")["input_ids"]) < 12
    assert "pixel_values" not in inputs and not inputs["image_mask"].any()


def test_default_text_budget_is_the_tokenizer_limit(tiny_processor):
    assert tiny_processor.text_max_length == 77
    inputs = tiny_processor.encode_items([{**ITEM, "description": ["word " * 500]}], with_images=False)
    assert inputs["input_ids"].shape == (1, 77)


# -------------------------------------------------------------------------------------------------- save / load
def _same_processor(loaded, original):
    assert type(loaded) is GenRecProcessor
    assert loaded.item_vocab == original.item_vocab
    assert loaded.text_fields == original.text_fields
    assert (loaded.max_seq_len, loaded.text_max_length) == (original.max_seq_len, original.text_max_length)
    text = "Amazon.com eGift Card, Happy Birthday"
    assert loaded.tokenizer(text)["input_ids"] == original.tokenizer(text)["input_ids"]
    assert loaded.tokenizer.model_max_length == original.tokenizer.model_max_length
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    pixels = loaded.image_processor(image, return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 32, 32)
    torch.testing.assert_close(pixels, original.image_processor(image, return_tensors="pt")["pixel_values"])
    histories = [["I003", "I001", "I003"], []]
    assert loaded(histories)["item_ids"].tolist() == original(histories)["item_ids"].tolist()


def test_save_load_round_trip(tiny_processor, tmp_path):
    tiny_processor.text_fields = ["title", "features"]
    tiny_processor.max_seq_len = 5
    tiny_processor.text_max_length = 40
    tiny_processor.add_items(["COLD1"])
    tiny_processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["item_vocab"][:2] == ["[PAD]", "I001"] and saved["item_vocab"][-1] == "COLD1"
    _same_processor(GenRecProcessor.from_pretrained(tmp_path), tiny_processor)
    _same_processor(AutoProcessor.from_pretrained(tmp_path), tiny_processor)

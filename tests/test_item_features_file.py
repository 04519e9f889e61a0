"""The catalog's content features in one file beside the model (`item_features.safetensors`): not in the weights,
written once, memory-mapped on load, refused with a named error when missing or not the file the config records,
still read from the weights of models saved before the file existed, and pushed with the model."""

import functools
import hashlib
import json
import logging
import os
import sys
from pathlib import Path

import pytest
import torch
import transformers
from huggingface_hub import CommitInfo, HfApi, ModelCard, RepoUrl
from huggingface_hub.errors import EntryNotFoundError
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from genrec_hf import GenRecConfig, GenRecModel

FEATURES = "item_features.safetensors"


@pytest.fixture
def model(tiny_config, make_tiny_model) -> GenRecModel:
    return make_tiny_model(tiny_config()).eval()


def histories() -> torch.LongTensor:
    return torch.randint(1, 51, (4, 7), generator=torch.Generator().manual_seed(3))


def stat_key(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def test_features_sit_beside_the_weights_in_float16_not_in_them(model, tmp_path):
    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as weights:
        names = set(weights.keys())
    assert not names & {"item_text_features", "item_image_features", "item_image_mask"}
    assert {"item_id_known", "item_popularity"} <= names  # decided by training: they stay with the weights
    features = load_file(tmp_path / FEATURES)  # a plain safetensors file
    assert {name: (t.dtype, tuple(t.shape)) for name, t in features.items()} == {
        "text_features": (torch.float16, (51, 16)),
        "image_features": (torch.float16, (51, 8)),
        "image_mask": (torch.bool, (51,)),
    }
    assert torch.equal(features["text_features"], model.item_text_features)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["item_features_file"] == FEATURES
    assert config["item_features_sha256"] == hashlib.sha256((tmp_path / FEATURES).read_bytes()).hexdigest()


def test_a_loaded_model_maps_the_file_and_scores_as_the_saved_one(model, tmp_path):
    model.save_pretrained(tmp_path)
    loaded = GenRecModel.from_pretrained(tmp_path).eval()
    assert loaded.item_text_features.dtype == torch.float16
    assert torch.equal(loaded.item_image_mask, model.item_image_mask)
    torch.testing.assert_close(loaded(histories()).logits, model(histories()).logits, rtol=0, atol=0)
    assert loaded.embed_items(torch.tensor([1, 2])).dtype == torch.float32  # gathered rows are upcast
    if sys.platform.startswith("linux"):  # the buffer's memory is a mapping of the file, not a copy
        start = loaded.item_text_features.data_ptr()
        mappings = [line.split() for line in Path("/proc/self/maps").read_text().splitlines()]
        mapped = [m for m in mappings if len(m) == 6 and m[5] == str((tmp_path / FEATURES).resolve())]
        ranges = [tuple(int(x, 16) for x in m[0].split("-")) for m in mapped]
        assert any(low <= start < high for low, high in ranges), mapped


def test_identical_features_are_never_written_twice(model, tmp_path):
    model.save_pretrained(tmp_path / "a")
    first = stat_key(tmp_path / "a" / FEATURES)
    model.save_pretrained(tmp_path / "a")
    assert stat_key(tmp_path / "a" / FEATURES) == first  # already there: not written again
    model.save_pretrained(tmp_path / "b")
    assert (tmp_path / "b" / FEATURES).stat().st_ino == first[0]  # the same bytes: hard-linked, not written
    GenRecModel.from_pretrained(tmp_path / "b").save_pretrained(tmp_path / "c")  # a loaded model too
    assert (tmp_path / "c" / FEATURES).stat().st_ino == first[0]

    model.add_items(text_features=torch.ones(1, 16))
    model.save_pretrained(tmp_path / "a")
    assert stat_key(tmp_path / "a" / FEATURES) != first
    assert load_file(tmp_path / "b" / FEATURES)["text_features"].shape == (51, 16)  # the other copies are intact
    grown = GenRecModel.from_pretrained(tmp_path / "a")
    assert grown.config.num_items == 51 and torch.equal(grown.item_text_features[51], torch.ones(16).half())


def test_a_missing_or_foreign_features_file_is_named_in_the_error(model, tiny_config, make_tiny_model, tmp_path):
    model.save_pretrained(tmp_path / "model")
    other = make_tiny_model(tiny_config(), seed=5)
    other.save_pretrained(tmp_path / "other")
    features = tmp_path / "model" / FEATURES

    features.unlink()
    with pytest.raises(FileNotFoundError, match=rf"{features}.*not found"):
        GenRecModel.from_pretrained(tmp_path / "model")

    os.link(tmp_path / "other" / FEATURES, features)  # the same shapes, other items
    with pytest.raises(ValueError, match=rf"{features} is not the features file this model was saved with"):
        GenRecModel.from_pretrained(tmp_path / "model")

    bigger = make_tiny_model(tiny_config(num_items=60))
    bigger.save_pretrained(tmp_path / "bigger")
    features.unlink()
    os.link(tmp_path / "bigger" / FEATURES, features)
    with pytest.raises(ValueError, match=rf"{features} holds .*\(61, 16\).* config expects .*\(51, 16\)"):
        GenRecModel.from_pretrained(tmp_path / "model")

    features.unlink()
    features.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    with pytest.raises(ValueError, match=rf"{features} is not a safetensors file"):
        GenRecModel.from_pretrained(tmp_path / "model")

    # a crafted repository: the right shapes, offsets past the end of the file, and a config.json that agrees
    header = {
        "text_features": {"dtype": "F16", "shape": [51, 16], "data_offsets": [10**9, 10**9 + 1632]},
        "image_features": {"dtype": "F16", "shape": [51, 8], "data_offsets": [0, 816]},
        "image_mask": {"dtype": "BOOL", "shape": [51], "data_offsets": [816, 867]},
    }
    text = json.dumps(header).encode()
    features.write_bytes(len(text).to_bytes(8, "little") + text + bytes(867))
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["item_features_sha256"] = hashlib.sha256(features.read_bytes()).hexdigest()
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=rf"{features}: the data offsets of text_features .* outside the file"):
        GenRecModel.from_pretrained(tmp_path / "model")


@pytest.mark.parametrize("location", ["../../item_features.safetensors", "/tmp/x.safetensors", "sub/x", "..", ""])
def test_the_config_names_no_features_path_outside_the_model_folder_or_its_parent(location):
    with pytest.raises(ValueError, match=r"GenRecConfig\.item_features_file="):
        GenRecConfig(item_features_file=location)
    assert GenRecConfig(item_features_file="../item_features.safetensors").item_features_file.startswith("../")


def test_a_model_saved_with_its_features_in_the_weights_still_loads(model, tmp_path, caplog):
    """Folders written before the features file existed (and Hub repos of that time) load unchanged."""
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    for buffer in ("item_text_features", "item_image_features", "item_image_mask"):
        weights[buffer] = getattr(model, buffer).float() if buffer != "item_image_mask" else model.item_image_mask
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((tmp_path / "config.json").read_text())
    del config["item_features_file"], config["item_features_sha256"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / FEATURES).unlink()

    with caplog.at_level(logging.WARNING):
        loaded, info = GenRecModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["unexpected_keys"] and not info["missing_keys"]
    assert "keeps its content features in its weights" in caplog.text
    assert loaded.item_text_features.dtype == torch.float16
    torch.testing.assert_close(loaded.eval()(histories()).logits, model(histories()).logits, rtol=0, atol=0)


def test_every_push_path_uploads_the_features_file(model, tmp_path, monkeypatch):
    """`model.push_to_hub` and `save_pretrained(push_to_hub=True)` (publish is covered by the Hub tests)."""
    uploaded = []

    def create_commit(api, repo_id, operations, **kwargs):
        uploaded.append({op.path_in_repo for op in operations})
        oid = "b" * 40
        url = f"https://huggingface.co/{repo_id}/commit/{oid}"
        return CommitInfo(commit_url=url, commit_message="", commit_description="", oid=oid, _endpoint=None)

    def no_card(*args, **kwargs):
        raise EntryNotFoundError("no card")

    def create_repo(api, repo_id, **kwargs):
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    # transformers 5.4 calls huggingface_hub's module-level functions (bound to its default HfApi at import)
    for module in (transformers.modeling_utils, transformers.utils.hub):
        for name, fake in (("create_repo", create_repo), ("create_commit", create_commit)):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, functools.partial(fake, None))
    monkeypatch.setattr(ModelCard, "load", no_card)
    model.push_to_hub("me/genrec")
    model.save_pretrained(str(tmp_path / "genrec"), push_to_hub=True, repo_id="me/genrec")
    model.save_pretrained(str(tmp_path / "genrec"), push_to_hub=True, repo_id="me/genrec")  # the file was already there
    assert len(uploaded) == 3 and all({FEATURES, "model.safetensors", "config.json"} <= files for files in uploaded)

"""Inference layer: recommend vs pipeline after a save/load round trip, exclude_seen, cold items, catalog build."""

import json
import shutil
import sys

import pytest
import torch
from fixtures.trained import CLUSTER_SIZE, MAX_SEQ_LEN, content_features, item_records
from transformers import AutoModel, AutoProcessor, pipeline

import genrec_hf  # noqa: F401  (registers the Auto classes and the pipeline)
from genrec_hf import GenRecModel, ItemEncoder
from genrec_hf.commands.precompute import main as precompute_main
from genrec_hf.inference import (
    ItemCatalog,
    append_items,
    build_faiss_index,
    faiss_recall_at_k,
    recommend_for_histories,
)
from genrec_hf.inference.build import WORK_DIR
from genrec_hf.inference.catalog import CATALOG_FAISS, CATALOG_METADATA

HISTORIES = [["A01", "A02", "A03"], ["B05", "B06"], ["A04", "B07", "A08", "A09"]]


@pytest.fixture
def loaded(trained_model_dir):
    return AutoModel.from_pretrained(trained_model_dir), AutoProcessor.from_pretrained(trained_model_dir)


def asins(processor, indices) -> list[str]:
    return [processor.index_to_item(i) for i in indices]


def test_reloaded_model_recommend_agrees_with_pipeline(trained_model_dir, loaded):
    model, processor = loaded
    assert isinstance(model, GenRecModel) and not model.training
    batch = processor(HISTORIES)
    expected = model.recommend(batch["item_ids"], batch["attention_mask"], k=5, exclude_seen=True)

    recommender = pipeline("next-item-recommendation", model=str(trained_model_dir))
    single = recommender(HISTORIES[0], k=5)
    assert [r["parent_asin"] for r in single] == asins(processor, expected.item_indices[0].tolist())
    torch.testing.assert_close(torch.tensor([r["score"] for r in single]), expected.scores[0], atol=1e-4, rtol=0)
    several = recommender(HISTORIES, k=5)
    for row, result in enumerate(several):
        assert [r["parent_asin"] for r in result] == asins(processor, expected.item_indices[row].tolist())
    # the trained model has learned the clusters: an all-A history gets A items first
    assert all(r["parent_asin"].startswith("A") for r in single)


def test_exclude_seen_removes_history_items(loaded):
    model, processor = loaded
    history = ["A01", "A02", "A03", "A05", "A06"]
    kept = recommend_for_histories(model, processor, [history], k=len(processor.item_vocab), exclude_seen=True)[0]
    assert not set(kept.parent_asins) & set(history)
    assert len(kept.parent_asins) == processor.num_items - len(history)
    everything = recommend_for_histories(model, processor, [history], k=processor.num_items, exclude_seen=False)[0]
    assert set(history) <= set(everything.parent_asins)


def test_bad_inputs_unknown_empty_truncated(loaded):
    model, processor = loaded
    long_history = [f"A{i:02d}" for i in range(1, 11)]
    unknown, empty, truncated = recommend_for_histories(
        model, processor, [["A01", "NOPE", "A02", "NOPE"], [], long_history], k=3
    )
    assert unknown.unknown_items == ["NOPE"] and not unknown.popularity_fallback
    assert empty.popularity_fallback and empty.parent_asins == ["A01", "A02", "A03"]  # training popularity
    assert empty.scores == [24.0, 23.0, 22.0]
    assert truncated.truncated == len(long_history) - MAX_SEQ_LEN
    # the most recent items are kept, and all ten history items stay excluded, not only the six in the window
    assert not set(truncated.parent_asins) & set(long_history)
    recent = recommend_for_histories(model, processor, [long_history[-MAX_SEQ_LEN:]], k=20)[0]
    window = [a for a in recent.parent_asins if a not in long_history][:3]
    assert truncated.parent_asins == window


def test_cold_item_added_with_add_items_is_recommended_for_matching_history(loaded):
    model, processor = loaded
    catalog = ItemCatalog.from_model(model, processor)
    features = content_features(0, 1, seed=99, noise=0.1)  # content of cluster A
    features_b = content_features(1, 1, seed=98, noise=0.1)  # content of cluster B
    append_items(model, processor, ["COLD_A"], features)
    append_items(model, processor, ["COLD_B"], features_b)
    catalog.extend(model, processor, ["a new alpha gadget", "a new beta gadget"])
    assert model.config.num_items == processor.num_items == 2 * CLUSTER_SIZE + 2
    assert not model.item_id_known[-2:].any()  # embedded from content alone

    history = ["A01", "A02", "A03", "A04"]
    unseen_a = CLUSTER_SIZE - len(history)
    for cat in (catalog, None):  # through the extended catalog and through the model alone
        result = recommend_for_histories(model, processor, [history], k=unseen_a + 1, catalog=cat)[0]
        assert "COLD_A" in result.parent_asins and "COLD_B" not in result.parent_asins
        assert all(a[0] == "A" or a == "COLD_A" for a in result.parent_asins)
    assert result.titles == [None] * len(result.titles)
    titled = recommend_for_histories(model, processor, [history], k=unseen_a + 1, catalog=catalog)[0]
    assert titled.titles[titled.parent_asins.index("COLD_A")] == "a new alpha gadget"
    # a cold item is usable in a history too, and pulls the ranking to its cluster
    result = recommend_for_histories(model, processor, [["COLD_B"]], k=3, catalog=catalog)[0]
    assert all(a.startswith("B") for a in result.parent_asins)


def test_pipeline_encodes_items_given_with_content(trained_model_dir, tiny_clip_path):
    recommender = pipeline("next-item-recommendation", model=str(trained_model_dir))
    before = recommender.model.config.num_items
    new_item = {"parent_asin": "NEW1", "title": "alpha gadget deluxe", "store": "store A"}
    result = recommender(["A01", new_item, "A02"], k=4, return_flags=True)
    assert result["unknown_items"] == [] and not result["popularity_fallback"]
    assert recommender.model.config.num_items == recommender.processor.num_items == before + 1
    assert "NEW1" in recommender.processor and recommender.get_catalog().num_items == before + 1
    # the new item was encoded by the model's item encoder (the tiny CLIP named in its config)
    encoder = ItemEncoder.from_pretrained(str(tiny_clip_path))
    features = encoder.encode([new_item], recommender.processor, show_progress=False)
    # stored at the precision of the features file
    assert torch.equal(recommender.model.item_text_features[-1], features.text_features[0].half())
    # same answer as the model's own recommend on the extended catalog; a string not in the catalog is skipped
    batch = recommender.processor([["A01", "NEW1", "A02"]])
    expected = recommender.model.recommend(batch["item_ids"], batch["attention_mask"], k=4)
    assert [r["parent_asin"] for r in result["recommendations"]] == asins(
        recommender.processor, expected.item_indices[0].tolist()
    )
    again = recommender(["A01", "NEW1", "GONE"], k=4, return_flags=True)
    assert again["unknown_items"] == ["GONE"] and recommender.model.config.num_items == before + 1


def test_precompute_extends_catalog_resumably_and_reports_faiss_recall(
    trained_model_dir, tmp_path, monkeypatch, capsys
):
    folder = tmp_path / "model"
    shutil.copytree(trained_model_dir, folder)
    new_items = [{"parent_asin": f"N{i}", "title": f"new gadget {i}", "description": ["fresh"]} for i in range(5)]
    table = tmp_path / "items.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in item_records() + new_items))

    calls = []
    encode = ItemEncoder.encode
    monkeypatch.setattr(
        ItemEncoder, "encode", lambda self, items, *a, **k: calls.append(len(items)) or encode(self, items, *a, **k)
    )
    argv = ["--model", str(folder), "--items", str(table), "--chunk_size", "2", "--faiss_index", "ivf"]
    assert precompute_main([*argv, "--max_chunks", "1"]) == 3  # interrupted after one chunk
    assert calls == [2] and (folder / WORK_DIR / "chunk-000000.safetensors").exists()
    assert AutoModel.from_pretrained(folder).config.num_items == 2 * CLUSTER_SIZE  # model untouched so far

    assert precompute_main(argv) == 0  # resumes: encodes only the two missing chunks
    assert calls == [2, 2, 1] and not (folder / WORK_DIR).exists()
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["num_items"] == 2 * CLUSTER_SIZE + 5 and summary["new_items"] == 5
    assert 0.0 <= summary["faiss"]["recall_at_10"] <= 1.0 and summary["faiss"]["kind"] == "ivf"

    model, processor = AutoModel.from_pretrained(folder), AutoProcessor.from_pretrained(folder)
    assert model.config.num_items == processor.num_items == 2 * CLUSTER_SIZE + 5
    assert processor.item_vocab[-5:] == [r["parent_asin"] for r in new_items]
    assert model.item_text_features[-5:].float().norm(dim=-1).gt(0.5).all()  # the saved features file grew too
    catalog = ItemCatalog.load(folder)
    assert catalog.matches(model, processor) and catalog.index is not None and (folder / CATALOG_FAISS).exists()
    assert catalog.titles[-1] == "new gadget 4" and catalog.titles[1] == "alpha gadget 01"
    assert (
        json.loads((folder / CATALOG_METADATA).read_text())["faiss"]["recall_at_10"] == summary["faiss"]["recall_at_10"]
    )
    result = recommend_for_histories(model, processor, [["N0", "A01"]], k=3, catalog=catalog)[0]
    assert len(result.parent_asins) == 3 and all(result.titles)

    calls.clear()
    assert precompute_main(["--model", str(folder), "--items", str(table)]) == 0  # nothing new: no encoding
    assert calls == [] and not (folder / CATALOG_FAISS).exists()


def test_faiss_search_matches_exact_ranking(loaded):
    model, processor = loaded
    exact = ItemCatalog.from_model(model, processor)
    indexed = ItemCatalog.from_model(model, processor)
    indexed.index, indexed.index_info = build_faiss_index(indexed.embeddings[1:], "flat")
    assert faiss_recall_at_k(indexed.index, indexed.embeddings[1:]) == 1.0
    histories = [*HISTORIES, [], ["A01", "A02", "A03", "A04", "A05", "A06", "A07"]]
    for a, b in zip(
        recommend_for_histories(model, processor, histories, k=5, catalog=exact),
        recommend_for_histories(model, processor, histories, k=5, catalog=indexed),
    ):
        assert a.parent_asins == b.parent_asins and a.popularity_fallback == b.popularity_fallback
        torch.testing.assert_close(torch.tensor(a.scores), torch.tensor(b.scores), atol=1e-4, rtol=0)


def test_missing_faiss_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` now fails as if it were not installed
    with pytest.raises(ImportError, match=r"pip install genrec_hf\[faiss\]"):
        build_faiss_index(torch.randn(8, 4), "flat")
    with pytest.raises(ValueError, match="faiss index kind"):
        build_faiss_index(torch.randn(8, 4), "annoy")

"""`GenRecModel.explain`, `content_share` and `similar_items`: leave-one-out contributions that equal the score drop
of actually removing the item, the gate's content/ID share, and nearest items in the item space (new items too)."""

import json

import pytest
import torch
import torch.nn.functional as F
from fixtures.models import TINY, build_tiny_model
from test_recommend_script import model_dir  # noqa: F401  (the fixture: trained model + precomputed catalog)
from transformers import AutoModel, AutoProcessor

from genrec_hf import GenRecConfig, GenRecModel, UnknownItemError
from genrec_hf.commands.recommend import main as recommend_main
from genrec_hf.inference import ItemCatalog, explain_items, similar_items
from genrec_hf.inference.explain import check_explainable

HISTORIES = torch.tensor([[3, 7, 9, 12, 0, 0, 0], [5, 0, 0, 0, 0, 0, 0], [0] * 7, [1, 2, 3, 4, 5, 6, 3]])
EXPLAINED = torch.tensor([[10, 11, 3], [12, 13, 14], [1, 2, 3], [6, 7, 8]])


def tiny_model(fusion: str = "gate"):
    return build_tiny_model(GenRecConfig(**{**TINY, "fusion": fusion}), seed=3).eval()


def history_scores(model, histories: list[list[int]]) -> torch.Tensor:
    """`score_histories` of unpadded histories (right-padded here)."""
    width = max(len(h) for h in histories)
    padded = torch.tensor([h + [0] * (width - len(h)) for h in histories])
    return model.score_histories(padded)[0]


@pytest.mark.parametrize("fusion", ["gate", "sum", "content", "id"])
def test_removing_a_history_item_lowers_the_score_by_its_contribution(fusion):
    model = tiny_model(fusion)
    explanation = model.explain(HISTORIES, EXPLAINED)
    assert explanation.contributions.shape == (4, 3, 7)

    full = model.score_histories(HISTORIES)[0]
    torch.testing.assert_close(explanation.scores, full.gather(1, EXPLAINED))
    for row in (0, 3):  # histories of several items: every position, the top contributor included
        history = HISTORIES[row][HISTORIES[row] > 0].tolist()
        without = history_scores(model, [history[:j] + history[j + 1 :] for j in range(len(history))])
        drops = explanation.scores[row][:, None] - without[:, EXPLAINED[row]].T
        torch.testing.assert_close(explanation.contributions[row, :, : len(history)], drops, atol=1e-4, rtol=0)
        assert explanation.contributions[row, :, len(history) :].eq(0).all()  # padding contributes nothing
    # one item: it is the whole reason; empty history: popularity, as `recommend` ranks it
    torch.testing.assert_close(explanation.contributions[1, :, 0], explanation.scores[1])
    assert explanation.contributions[1, :, 1:].eq(0).all() and explanation.contributions[2].eq(0).all()
    torch.testing.assert_close(explanation.scores[2], model.item_popularity[EXPLAINED[2]])


def test_explain_takes_one_item_per_history_and_the_attention_mask():
    model = tiny_model()
    batched = model.explain(HISTORIES, EXPLAINED)
    single = model.explain(HISTORIES, EXPLAINED[:, 0], attention_mask=(HISTORIES > 0).long())
    torch.testing.assert_close(single.scores, batched.scores[:, :1])
    torch.testing.assert_close(single.contributions, batched.contributions[:, :1], atol=1e-5, rtol=0)


def test_content_share_follows_the_fusion_and_the_gate():
    items = torch.tensor([[1, 2], [3, 4]])
    assert tiny_model("content").content_share(items).eq(1).all()
    assert tiny_model("id").content_share(items).eq(0).all()

    model = tiny_model("gate")
    share = model.content_share(items)
    content, ids = model.item_tower.components(*model._item_tower_inputs(items))
    torch.testing.assert_close(content + ids, model.embed_items(items))  # the two parts make the fused vector
    torch.testing.assert_close(share, content.norm(dim=-1) / (content.norm(dim=-1) + ids.norm(dim=-1)))
    assert ((share > 0) & (share < 1)).all()
    (new,) = model.add_items(text_features=model.item_text_features[1:2].clone())
    assert model.content_share(new[None]).item() == 1.0  # no trained ID: all content
    assert model.explain(HISTORIES[:1], new[None]).content_share.item() == 1.0


@pytest.mark.parametrize("fusion", ["gate", "content"])
def test_similar_items_are_nearest_by_cosine_and_never_the_item_itself(fusion):
    model = tiny_model(fusion)
    queries = torch.tensor([4, 20, 50])
    similar = model.similar_items(queries, k=5)
    assert similar.item_indices.shape == similar.scores.shape == (3, 5)
    vectors = F.normalize(model.catalog_embeddings(), dim=-1)
    expected = vectors[queries] @ vectors.T
    expected[:, 0] = -2
    expected[torch.arange(3), queries] = -2
    torch.testing.assert_close(similar.scores, expected.topk(5).values)
    torch.testing.assert_close(similar.item_indices, expected.topk(5).indices)
    assert (similar.scores[:, :-1] >= similar.scores[:, 1:]).all()
    catalog = model.catalog_embeddings()
    torch.testing.assert_close(model.similar_items(queries, k=5, catalog=catalog).scores, similar.scores)
    everything = model.similar_items(queries, k=100)  # capped at the 49 other items
    assert everything.item_indices.shape == (3, 49) and everything.scores.isfinite().all()
    assert not (everything.item_indices == queries[:, None]).any()


def test_similar_items_of_an_item_added_after_training():
    model = tiny_model("content")
    (new,) = model.add_items(
        text_features=model.item_text_features[17:18].clone(),
        image_features=model.item_image_features[17:18].clone(),
        image_mask=model.item_image_mask[17:18].clone(),
    )
    similar = model.similar_items(new[None], k=3)
    assert similar.item_indices[0, 0].item() == 17  # the same content: the nearest item
    assert similar.scores[0, 0].item() == pytest.approx(1.0, abs=1e-5)
    assert model.similar_items(torch.tensor([17]), k=1).item_indices.item() == new.item()  # and the other way round


def test_recommend_script_explains_each_recommendation(model_dir, tmp_path):  # noqa: F811
    history = tmp_path / "history.txt"
    history.write_text("A01 B02 A03 A04\nB05\nNOPE A02\n\n")
    output = tmp_path / "out.jsonl"
    argv = ["--model", str(model_dir), "--history", str(history), "--output", str(output), "--k", "4"]
    assert recommend_main([*argv, "--explain", "true"]) == 0
    records = [json.loads(line) for line in output.read_text().splitlines()]
    model, processor = AutoModel.from_pretrained(model_dir), AutoProcessor.from_pretrained(model_dir)
    for record, seen in zip(records, [["A01", "B02", "A03", "A04"], ["B05"], ["A02"], []]):
        for item in record["recommendations"]:
            contributions = item["explanation"]["contributions"]
            assert [c["parent_asin"] for c in contributions] == seen  # every history item the model saw
            assert 0 < item["explanation"]["content_share"] < 1  # gated fusion: content and ID both count
            if not seen:
                assert item["because"] is None  # popularity: nothing in the history to point at
                continue
            top = max(contributions, key=lambda c: c["contribution"])
            assert item["because"].startswith(f"because of {top['title']}") and top["title"].endswith(
                top["parent_asin"][1:]
            )
            batch = processor([seen])
            scores, _ = model.score_histories(batch["item_ids"])
            assert item["score"] == pytest.approx(
                scores[0, processor.item_to_index(item["parent_asin"])].item(), abs=1e-4
            )
    assert recommend_main(argv) == 0  # without --explain: the plain record
    assert "because" not in json.loads(output.read_text().splitlines()[0])["recommendations"][0]


def test_a_head_without_the_explain_contract_is_refused_clearly(model_dir, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delattr(GenRecModel, "explain")
    history = tmp_path / "history.txt"
    history.write_text("A01\n")
    argv = ["--model", str(model_dir), "--history", str(history), "--output", str(tmp_path / "out.jsonl")]
    assert recommend_main([*argv, "--explain", "true"]) == 2  # refused before serving, not one error per line
    assert not (tmp_path / "out.jsonl").exists()
    with pytest.raises(ValueError, match="GenRecModel does not implement explain"):
        check_explainable(AutoModel.from_pretrained(model_dir))


def test_similar_items_of_parent_asins_stay_in_the_cluster(model_dir):  # noqa: F811
    model, processor = AutoModel.from_pretrained(model_dir), AutoProcessor.from_pretrained(model_dir)
    catalog = ItemCatalog.load(model_dir)
    similar = similar_items(model, processor, ["A01", "B07"], k=5, catalog=catalog)
    assert [[s.parent_asin[0] for s in row] for row in similar] == [["A"] * 5, ["B"] * 5]
    assert similar[0][0].title.startswith("alpha gadget") and "A01" not in [s.parent_asin for s in similar[0]]
    from_model = similar_items(model, processor, ["A01", "B07"], k=5)  # no catalog: vectors from the model
    assert [[s.parent_asin for s in row] for row in from_model] == [[s.parent_asin for s in row] for row in similar]
    with pytest.raises(UnknownItemError, match="NOPE"):
        similar_items(model, processor, ["NOPE"])
    [[explanation]] = explain_items(model, processor, [["A01", "NOPE", "A02"]], [["A05"]], catalog)
    assert [c.parent_asin for c in explanation.contributions] == ["A01", "A02"]  # unknown items are skipped
    assert explanation.reasons(5) == sorted(
        [c for c in explanation.contributions if c.contribution > 0], key=lambda c: -c.contribution
    )

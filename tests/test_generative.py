"""The generative head: semantic IDs, constrained beam search through `generate()`, training on real data, the
recommendation paths, `add_items` and remote-code loading in a Python without genrec_hf."""

import json
import logging
import logging.handlers
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_remote_code import CHILD
from test_training import KillAt

from genrec_hf import (
    GenRecConfig,
    GenRecForSemanticIDGeneration,
    GenRecGenerativeConfig,
    GenRecModel,
    GenRecProcessor,
)
from genrec_hf.commands.recommend import main as recommend_main
from genrec_hf.evaluation import EvaluationReport, RankingEvaluator
from genrec_hf.hub import save_for_hub
from genrec_hf.semantic_ids import SemanticIDs, kmeans, quantization_inputs, residual_codes
from genrec_hf.training import GenerativeArguments, ModelArguments, SemanticIDCollator, train
from genrec_hf.training import run as training_run

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ALL_BEAUTY = DATA_DIR / "amazon2023_all_beauty" / "raw"


def all_beauty_raw() -> dict[str, list[str]]:
    """The raw All_Beauty 2023 files as `train`'s data argument; skips the test where the shared data is absent."""
    if not (ALL_BEAUTY / "All_Beauty.jsonl.gz").is_file():
        pytest.skip(f"All_Beauty 2023 files not found in {ALL_BEAUTY} (shared data folder absent)")
    return {
        "reviews": [str(ALL_BEAUTY / "All_Beauty.jsonl.gz")],
        "meta": [str(ALL_BEAUTY / "meta_All_Beauty.jsonl.gz")],
    }


def test_semantic_ids_are_unique_and_reproduce_the_residual_codes():
    vectors = F.normalize(torch.randn(300, 12, generator=torch.Generator().manual_seed(0)), dim=1)
    vectors[10] = vectors[11]  # identical content must still get distinct IDs
    ids = SemanticIDs.fit(vectors, num_levels=2, codebook_size=8, seed=0)
    assert ids.codes.shape == (300, 3) and ids.codebooks.shape == (2, 8, 12)
    assert len(set(map(tuple, ids.codes.tolist()))) == 300
    assert torch.equal(ids.codes[:, :2], residual_codes(vectors, ids.codebooks))
    assert ids.codes[10, :2].tolist() == ids.codes[11, :2].tolist() and ids.codes[10, 2] != ids.codes[11, 2]
    assert 0 < ids.stats["collision_rate"] <= 1 and len(ids.stats["codebook_usage"]) == 2


def test_kmeans_with_fewer_points_than_clusters_keeps_every_point_its_own_cluster():
    points = torch.eye(3)
    for num_clusters in (5, 10):  # 10: more clusters left empty than there are points
        centroids = kmeans(points, num_clusters)
        assert centroids.shape == (num_clusters, 3)
        assert torch.cdist(points, centroids).min(dim=1).values.max() < 1e-6


def test_semantic_ids_of_a_catalog_smaller_than_the_codebook():
    # the first level gives every item its own code, so the deeper levels cluster all-zero residuals
    vectors = F.normalize(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    semantic_ids = SemanticIDs.fit(vectors, num_levels=3, codebook_size=16)
    assert len(set(map(tuple, semantic_ids.codes.tolist()))) == 6
    assert semantic_ids.stats["collision_rate"] == 0.0


def test_quantization_needs_content():
    with pytest.raises(ValueError, match="content features"):
        quantization_inputs(torch.zeros(4, 0), torch.zeros(4, 0), torch.zeros(4, dtype=torch.bool))


def random_generative_model(num_items: int = 60, seed: int = 0, **overrides) -> GenRecForSemanticIDGeneration:
    """An untrained generative model over random item content (codes from residual k-means, 8 codes per level)."""
    torch.manual_seed(seed)
    content = F.normalize(torch.randn(num_items, 16), dim=1)
    ids = SemanticIDs.fit(content, num_levels=2, codebook_size=8, seed=seed)
    settings = dict(num_code_levels=2, codebook_size=8, content_dim=16, text_feature_dim=16, max_seq_len=6)
    settings.update(n_embd=32, n_layer=2, n_head=2, n_inner=64, num_beams=10, **overrides)
    model = GenRecForSemanticIDGeneration(GenRecGenerativeConfig(num_items=num_items, **settings)).eval()
    model.set_semantic_ids(ids.codes, ids.codebooks, content)
    return model


def right_padded(histories: list[list[int]], width: int) -> torch.LongTensor:
    return torch.tensor([h + [0] * (width - len(h)) for h in histories])


def test_every_generated_item_is_a_catalog_item_for_many_histories():
    model = random_generative_model()
    generator = torch.Generator().manual_seed(1)
    histories = [[]] + [torch.randint(1, 61, (n,), generator=generator).tolist() for n in (1, 2, 3, 6) * 8]
    item_ids = right_padded(histories, 6)
    prompts = model.history_prompts(item_ids)
    sequences = model.generate(**prompts, num_beams=10, num_return_sequences=10, do_sample=False)
    generated = sequences[:, prompts["input_ids"].shape[1] :]
    assert generated.shape[1] == model.config.tokens_per_item
    assert all(model.trie.item(tuple(tokens)) is not None for tokens in generated.tolist())
    rows, scores = model.beam_search_items(item_ids)
    assert (rows >= 1).all() and (rows <= 60).all() and torch.isfinite(scores).all()
    assert all(len(set(row)) == 10 for row in rows.tolist())  # distinct items, best first
    assert (scores[:, :-1] >= scores[:, 1:]).all()


def test_prompt_cache_and_left_padding_do_not_change_the_beams():
    model = random_generative_model()
    item_ids = right_padded([[5, 9, 2], [7], [3, 4, 5, 6, 7, 8]], 6)
    prompts = model.history_prompts(item_ids)
    kwargs = dict(num_beams=10, num_return_sequences=10, do_sample=False, length_penalty=0.0)
    plain = model.generate(**prompts, output_scores=True, return_dict_in_generate=True, **kwargs)
    rows, scores = model.beam_search_items(item_ids)
    assert torch.allclose(scores.flatten(), plain.sequences_scores, atol=1e-5)
    alone, _ = model.beam_search_items(torch.tensor([[7]]))
    assert alone[0].tolist() == rows[1].tolist()


def test_item_vectors_enter_at_each_completed_item_and_never_for_the_item_being_predicted():
    model = random_generative_model(item_vector_inputs=True)
    item_ids = right_padded([[5, 9, 2], [7], []], 3)
    prompts = model.history_prompts(item_ids)
    completed = model.trie.completed_items(prompts["input_ids"])
    assert completed[completed > 0].tolist() == [5, 9, 2, 7]
    assert (completed[:, -1] == torch.tensor([2, 7, 0])).all()  # the last token of each history
    # beam search (prompt cache, one item's tokens per pass) scores what teacher forcing over whole sequences gives
    rows, scores = model.beam_search_items(item_ids[:2])
    assert torch.allclose(scores, model.item_log_probs(item_ids[:2], rows), atol=1e-5)
    # an item's own vector does not move its probability; a history item's vector does
    asked = torch.tensor([[30, 31], [30, 31]])
    before = model.item_log_probs(item_ids[:2], asked)
    model.item_vectors[30] = torch.randn(16)
    assert torch.allclose(model.item_log_probs(item_ids[:2], asked), before)
    model.item_vectors[9] = torch.randn(16)
    moved = model.item_log_probs(item_ids[:2], asked)
    assert not torch.allclose(moved[0], before[0]) and torch.allclose(moved[1], before[1])
    with pytest.raises(ValueError, match="quantized vectors"):
        model.set_semantic_ids(model.item_codes[1:], model.codebooks)


def test_items_added_to_a_model_with_item_vectors_bring_theirs_and_survive_saving(tmp_path):
    model = random_generative_model(item_vector_inputs=True)
    content = F.normalize(torch.randn(1, 16), dim=1)
    (new,) = model.add_items(text_features=content).tolist()
    assert model.item_vectors.shape == (62, 16) and torch.allclose(model.item_vectors[new], content[0])
    model.save_pretrained(tmp_path)
    loaded = GenRecForSemanticIDGeneration.from_pretrained(tmp_path).eval()
    history = right_padded([[5, new], [new]], 2)
    assert loaded.trie.completed_items(loaded.history_prompts(history)["input_ids"])[:, -1].tolist() == [new, new]
    assert torch.allclose(loaded.beam_search_items(history)[1], model.beam_search_items(history)[1])


def test_recommend_excludes_history_refuses_k_above_beams_and_falls_back_to_popularity():
    model = random_generative_model()
    model.set_item_popularity(torch.arange(60, dtype=torch.float))
    item_ids = right_padded([[5, 9, 2], []], 3)
    every = model.recommend(item_ids, k=10, exclude_seen=False)
    seen = model.recommend(item_ids, k=10, exclude_seen=True)
    kept = [item for item in every.item_indices[0].tolist() if item not in (5, 9, 2)]
    assert seen.item_indices[0].tolist()[: len(kept)] == kept
    assert seen.popularity_fallback.tolist() == [False, True]
    assert seen.item_indices[1].tolist() == list(range(60, 50, -1))
    with pytest.raises(ValueError, match="beams"):
        model.recommend(item_ids, k=11)
    with pytest.raises(ValueError, match="max_seq_len"):
        model.recommend(torch.ones(1, 7, dtype=torch.long), k=5)


def test_evaluator_ranks_are_positions_in_the_beam_list():
    model = random_generative_model()
    item_ids = right_padded([[5, 9, 2], [7]], 3)
    top = model.recommend(item_ids, k=10, exclude_seen=True).item_indices
    examples = {"item_ids": [[5, 9, 2], [7]], "target_id": [int(top[0, 3]), 60 if 60 not in top[1] else 59]}
    table = _Table(examples)
    ranks, losses = RankingEvaluator(exclude_history=True).rank(model, table)
    assert losses is None
    assert ranks[0] == 4.0
    assert ranks[1] > 10  # outside the beams: ranked after every beam item


class _Table(dict):
    """A dict of columns that slices like a `datasets.Dataset`."""

    def __len__(self):
        return len(next(iter(self.values())))

    def __getitem__(self, key):
        if isinstance(key, slice):
            return {name: values[key] for name, values in self.items()}
        return super().__getitem__(key)


def test_collator_turns_sequences_into_token_sequences_with_labels():
    model = random_generative_model()
    collator = SemanticIDCollator(model.item_tokens(torch.arange(61)))
    batch = collator([{"item_ids": [3, 4]}, {"item_ids": [5]}])
    assert batch["input_ids"].shape == (2, 7)
    assert batch["input_ids"][0, 1:4].tolist() == model.item_tokens(torch.tensor(3)).tolist()
    assert batch["labels"][1, 4:].tolist() == [-100] * 3 and batch["attention_mask"][1].tolist() == [1] * 4 + [0] * 3
    loss = model(**batch).loss
    assert torch.isfinite(loss)


def test_add_items_codes_new_items_from_content_and_they_can_be_generated():
    model = random_generative_model()
    rows, _ = model.beam_search_items(right_padded([[5, 9, 2]], 3))
    best = int(rows[0, 0])
    # A new item with the best item's content shares its prefix and takes the next free final code.
    content = model.codebooks.sum(dim=0).new_zeros(1, 16)
    content[0] = sum(model.codebooks[level, code] for level, code in enumerate(model.item_codes[best, :2].tolist()))
    (new,) = model.add_items(text_features=content).tolist()
    assert new == 61 and model.config.num_items == 61
    assert model.item_codes[new, :2].tolist() == model.item_codes[best, :2].tolist()
    assert (
        model.item_codes[new, 2]
        not in model.item_codes[1:new][
            (model.item_codes[1:new, :2] == model.item_codes[new, :2]).all(dim=1), 2
        ].tolist()
    )
    rows, _ = model.beam_search_items(right_padded([[5, 9, 2]], 3), num_beams=20)
    assert new in rows[0].tolist()


@pytest.fixture(scope="module")
def trained_generative(tmp_path_factory, minilm_path):
    """A tiny generative model trained by `train()` on the real All_Beauty 2023 files with MiniLM semantic IDs."""
    output = tmp_path_factory.mktemp("generative")
    raw = all_beauty_raw()
    schedule = {"num_train_epochs": 2, "per_device_train_batch_size": 32, "report_to": "none", "use_cpu": True}
    # `caplog` is per test; this module-wide fixture keeps the Trainer's warnings itself
    trainer_log = logging.handlers.BufferingHandler(capacity=10_000)
    trainer_log.setLevel(logging.WARNING)
    logging.getLogger("transformers.trainer").addHandler(trainer_log)
    try:
        result = train(
            raw,
            output,
            model=ModelArguments(head="generative", item_encoder=str(minilm_path), max_seq_len=8),
            generative=GenerativeArguments(codebook_size=16, n_embd=32, n_layer=1, n_head=2, n_inner=64, num_beams=10),
            evaluation={"bootstrap_samples": 50, "max_eval_samples": 64},
            training_args=schedule,
        )
    finally:
        logging.getLogger("transformers.trainer").removeHandler(trainer_log)
    result.save()
    return result, output, [record.getMessage() for record in trainer_log.buffer]


def test_generative_training_reports_beam_protocol_and_semantic_id_stats(trained_generative):
    result, output, trainer_log = trained_generative
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["model"]["head"] == "generative"
    assert metrics["training"]["hyperparameters"]["weight_averaging_epochs"] == 3.0  # the default of both heads
    assert 0 <= metrics["model"]["semantic_ids"]["collision_rate"] <= 1
    assert metrics["protocol"]["ranking"].startswith("beam search over catalog items (10 beams")
    assert metrics["test_warm"]["count"] + metrics["test_cold"]["count"] == 253
    assert result.model.lm_head.weight is result.model.transformer.wte.weight
    assert not [message for message in trainer_log if "missing keys" in message]  # the best checkpoint re-tied


def test_stranger_loads_generative_model_with_remote_code_and_gets_the_same_items(trained_generative, tmp_path):
    result, _, _ = trained_generative
    model, processor = result.model.eval(), result.processor
    folder = save_for_hub(model, processor, tmp_path / "repo")
    assert {"modeling_genrec_generative.py", "semantic_ids.py"} <= {p.name for p in folder.iterdir()}
    card = (folder / "README.md").read_text()
    assert "A **generative** recommender" in card and "user tower" not in card.lower()
    vocab = processor.item_vocab
    histories = [vocab[1:4], [], vocab[5:6], vocab[1:40]]  # empty and over-long histories too
    child = CHILD.replace('model(inputs["item_ids"], inputs["attention_mask"]).logits', "torch.zeros(1)")
    out = subprocess.run(
        [sys.executable, "-c", child, str(folder), json.dumps(histories)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    remote = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert remote["blocked"] and remote["genrec_loaded"] == []
    assert remote["model_module"].endswith("modeling_genrec_generative")
    inputs = processor(histories)
    local = model.recommend(inputs["item_ids"], inputs["attention_mask"], k=5).item_indices.tolist()
    assert remote["top"] == local
    assert all(1 <= item <= model.config.num_items for row in local for item in row)


def test_recommend_script_serves_a_generative_model(trained_generative, tmp_path, capsys):
    result, output, _ = trained_generative
    vocab = result.processor.item_vocab
    history = tmp_path / "history.jsonl"
    history.write_text(json.dumps({"user_id": "u1", "history": vocab[1:4]}) + "\n")
    recommendations = tmp_path / "out.jsonl"
    code = recommend_main(
        ["--model", str(output), "--history", str(history), "--k", "5", "--output", str(recommendations)]
        + ["--explain", "true"]
    )
    assert code == 0
    (line,) = recommendations.read_text().splitlines()
    entries = json.loads(line)["recommendations"]
    served = [entry["parent_asin"] for entry in entries]
    assert len(served) == 5 and not set(served) & set(vocab[1:4]) and set(served) <= set(vocab[1:])
    assert all(len(entry["explanation"]["contributions"]) == 3 for entry in entries)


@pytest.fixture(scope="module")
def generative_coded_by_dense(tmp_path_factory, minilm_path):
    """A tiny dense gated model trained on All_Beauty 2023, and a generative model whose codes quantize its items."""
    root = tmp_path_factory.mktemp("codes_from_dense")
    raw = all_beauty_raw()
    schedule = {"num_train_epochs": 1, "per_device_train_batch_size": 32, "report_to": "none", "use_cpu": True}
    encoder = {"item_encoder": str(minilm_path), "max_seq_len": 8, "feature_cache_dir": str(root / "features")}
    dense = train(
        raw,
        root / "dense",
        model=ModelArguments(fusion="gate", hidden_size=16, num_hidden_layers=1, num_attention_heads=1, **encoder),
        evaluation={"bootstrap_samples": 20},
        training_args=schedule,
    )
    dense.save()
    generative = train(
        raw,
        root / "generative",
        model=ModelArguments(head="generative", **encoder),
        generative=GenerativeArguments(
            codebook_size=16, n_embd=32, n_layer=1, n_head=2, n_inner=64, semantic_ids_from=str(root / "dense")
        ),
        evaluation={"bootstrap_samples": 20, "max_eval_samples": 64},
        training_args=schedule,
    )
    generative.save()
    return dense, generative, root


def test_codes_from_a_dense_model_quantize_its_item_vectors_and_code_added_items_as_cold_ones(
    generative_coded_by_dense, tmp_path
):
    dense, generative, root = generative_coded_by_dense
    dense_model, model = dense.model.eval(), generative.model.eval()
    assert model.config.quantized_item_tower["fusion"] == "gate" and model.config.content_dim == 16
    levels = model.config.num_code_levels
    with torch.no_grad():
        vectors = F.normalize(dense_model.catalog_embeddings()[1:], dim=1)
    assert torch.equal(model.item_codes[1:, :levels], residual_codes(vectors, model.codebooks))
    card = (save_for_hub(model, generative.processor, tmp_path / "repo") / "README.md").read_text()
    assert "item vector in a\ntrained dense GenRec model" in card
    quantized = EvaluationReport.load(root / "generative").model.semantic_ids["quantized"]
    assert quantized == "item vectors of a dense GenRec model (fusion gate)"  # metrics.json says what was coded

    # Reloaded, the model codes an item added with the content of a cold catalog item (one no training sequence
    # holds, so the dense model embeds it from content alone) exactly as that item is coded.
    reloaded = GenRecForSemanticIDGeneration.from_pretrained(root / "generative").eval()
    cold = int((~dense_model.item_id_known[1:]).nonzero()[0, 0]) + 1
    text = dense_model.item_text_features[cold : cold + 1].float()
    (new,) = reloaded.add_items(text_features=text).tolist()
    assert reloaded.item_codes[new, :levels].tolist() == reloaded.item_codes[cold, :levels].tolist()
    assert reloaded.item_codes[new, levels] != reloaded.item_codes[cold, levels]


def test_codes_from_a_dense_model_need_content_and_the_same_catalog(generative_coded_by_dense, tmp_path):
    dense, _, root = generative_coded_by_dense
    vocab = dense.processor.item_vocab[1:]
    reference = {"item_encoder_name_or_path": dense.model.config.item_encoder_name_or_path}
    id_only = GenRecModel(GenRecConfig(num_items=len(vocab), fusion="id", text_feature_dim=0, image_feature_dim=0))
    id_only.save_pretrained(tmp_path / "id_only")
    GenRecProcessor.without_content(vocab, 8).save_pretrained(tmp_path / "id_only")
    with pytest.raises(ValueError, match="ID-only"):
        training_run.dense_item_vectors(str(tmp_path / "id_only"), dense.processor, reference)
    other = GenRecProcessor.without_content(list(reversed(vocab)), 8)
    with pytest.raises(ValueError, match="another catalog"):
        training_run.dense_item_vectors(str(tmp_path / "id_only"), other, reference)
    with pytest.raises(ValueError, match="same --item_encoder"):
        training_run.dense_item_vectors(str(root / "dense"), dense.processor, {"item_encoder_name_or_path": "x"})


def test_generative_head_needs_an_item_encoder(tmp_path):
    with pytest.raises(ValueError, match="item_encoder"):
        train(
            {"synthetic": True},
            tmp_path,
            model=ModelArguments(head="generative", item_encoder="none"),
            training_args={"report_to": "none"},
        )
    with pytest.raises(ValueError, match="head"):
        ModelArguments(head="generatve")


def test_explain_scores_are_beam_scores_and_contributions_are_exact_leave_one_out_drops():
    model = random_generative_model()
    item_ids = right_padded([[5, 9, 2], [7]], 3)
    rows, beam_scores = model.beam_search_items(item_ids)
    explanation = model.explain(item_ids, rows[:, :3])
    assert torch.allclose(explanation.scores, beam_scores[:, :3], atol=1e-4)
    without_first = model.item_log_probs(right_padded([[9, 2]], 3), rows[:1, :3])
    drop = explanation.scores[0] - without_first[0]
    assert torch.allclose(explanation.contributions[0, :, 0], drop, atol=1e-4)
    assert (explanation.contributions[1, :, 1:] == 0).all()  # padding contributes nothing
    assert torch.allclose(explanation.contributions[1, :, 0], explanation.scores[1])  # one item: the whole score
    assert (explanation.content_share == 1).all()


def test_similar_items_share_the_longest_code_prefix_first():
    model = random_generative_model()
    similar = model.similar_items(torch.tensor([4, 17]), k=5)
    codes = model.item_codes[:, :2]
    for query, row in zip((4, 17), similar.item_indices.tolist()):
        assert query not in row and 0 not in row
        shared = [int((codes[item] == codes[query]).long().cumprod(0).sum()) for item in row]
        assert shared == sorted(shared, reverse=True)
        every = [int((codes[item] == codes[query]).long().cumprod(0).sum()) for item in range(1, 61) if item != query]
        assert shared[0] == max(every)


def test_pipeline_serves_a_generative_model_like_recommend(trained_generative):
    from transformers import pipeline

    result, output, _ = trained_generative
    vocab = result.processor.item_vocab
    recommender = pipeline("next-item-recommendation", model=str(output))
    served = [entry["parent_asin"] for entry in recommender(vocab[1:4], k=5)]
    inputs = result.processor([vocab[1:4]])
    top = result.model.eval().recommend(inputs["item_ids"], inputs["attention_mask"], k=5).item_indices[0]
    assert served == [vocab[int(i)] for i in top]


@pytest.mark.slow
def test_generative_run_resumed_from_a_checkpoint_equals_the_uninterrupted_run(tmp_path, minilm_path, monkeypatch):
    raw = all_beauty_raw()
    # 8 steps per epoch: the checkpoint at step 5 is mid-epoch and the resumed run crosses into the second epoch;
    # GPT-2's dropout, AdamW, the weight average and the semantic IDs (k-means, recomputed at start) all have state
    # to restore. The interrupted run is stopped by a callback at step 7, as if killed: its schedule (and so the
    # averaging horizon) is the full run's.
    schedule = {"per_device_train_batch_size": 32, "report_to": "none", "use_cpu": True, "eval_strategy": "no",
                "save_strategy": "steps", "save_steps": 5, "load_best_model_at_end": False,
                "lr_scheduler_type": "constant", "logging_steps": 1}  # fmt: skip

    def run(output, max_steps: int, resume: str | None = None):
        return train(
            raw,
            output,
            model=ModelArguments(head="generative", item_encoder=str(minilm_path), max_seq_len=8),
            generative=GenerativeArguments(codebook_size=16, n_embd=32, n_layer=1, n_head=2, n_inner=64, num_beams=10),
            evaluation={"bootstrap_samples": 20},
            training_args={**schedule, "max_steps": max_steps, "resume_from_checkpoint": resume},
        )

    full = run(tmp_path / "full", 12)
    with monkeypatch.context() as patch:
        patch.setattr(training_run, "TrainingCurvesCallback", lambda: KillAt(7))
        interrupted = run(tmp_path / "interrupted", 12)
    resumed = run(tmp_path / "interrupted", 12, resume=str(tmp_path / "interrupted" / "checkpoint-5"))

    expected, got, behind = (r.model.state_dict() for r in (full, resumed, interrupted))
    assert torch.equal(got["item_codes"], expected["item_codes"])
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=1e-6, msg=name)
    assert max((behind[k] - v).abs().max().item() for k, v in expected.items() if v.is_floating_point()) > 1e-4
    assert resumed.report.test == full.report.test

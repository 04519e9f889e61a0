"""GenRecModel in the style of transformers' ModelTesterMixin, plus its losses, catalog and `recommend`."""

import math

import pytest
import torch
import torch.nn.functional as F
from fixtures.models import TINY, build_tiny_model
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel

import genrec_hf  # noqa: F401  (registers the Auto classes)
from genrec_hf import GenRecConfig, GenRecModel, losses_genrec
from genrec_hf.losses_genrec import sampled_info_nce, sampling_log_q
from genrec_hf.modeling_genrec import FeatureWhitening


class GenRecModelTester:
    """Tiny config and inputs: batch 3, histories of lengths 7, 4 and 1 right-padded to 7, 50 items."""

    def __init__(self, batch_size=3, seq_length=7, lengths=(7, 4, 1), seed=0, **config_overrides):
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.lengths = lengths
        self.seed = seed
        self.config_overrides = config_overrides

    def get_config(self, **overrides) -> GenRecConfig:
        return GenRecConfig(**{**TINY, "max_seq_len": self.seq_length, **self.config_overrides, **overrides})

    def prepare_config_and_inputs(self, **overrides):
        config = self.get_config(**overrides)
        generator = torch.Generator().manual_seed(self.seed)
        full = torch.randint(1, config.num_items + 1, (self.batch_size, self.seq_length + 1), generator=generator)
        item_ids = torch.zeros(self.batch_size, self.seq_length, dtype=torch.long)
        labels = torch.full_like(item_ids, -100)
        last_labels = torch.zeros(self.batch_size, dtype=torch.long)
        for row, length in enumerate(self.lengths):
            item_ids[row, :length] = full[row, :length]
            labels[row, :length] = full[row, 1 : length + 1]
            last_labels[row] = full[row, length]
        return config, item_ids, (item_ids != 0).long(), labels, last_labels

    def prepare_config_and_inputs_for_common(self, **overrides):
        config, item_ids, attention_mask, _, _ = self.prepare_config_and_inputs(**overrides)
        return config, {"item_ids": item_ids, "attention_mask": attention_mask}

    def create_model(self, config: GenRecConfig, seed: int | None = None) -> GenRecModel:
        return build_tiny_model(config, self.seed if seed is None else seed)


class TestFeatureWhitening:
    def test_whitened_features_have_unit_covariance_and_the_projection_sees_them(self):
        generator = torch.Generator().manual_seed(0)
        mixing = torch.randn(6, 6, generator=generator) * torch.tensor([3.0, 2.0, 1.0, 0.5, 0.3, 0.2])
        features = torch.randn(4000, 6, generator=generator) @ mixing + 3.0
        whitening = FeatureWhitening(6)
        whitening.fit(features, epsilon=0.0)
        whitened = (features.double() - features.double().mean(dim=0)) @ whitening.transform.double()
        torch.testing.assert_close(whitened.T @ whitened / len(whitened), torch.eye(6).double(), atol=1e-4, rtol=0)
        linear = torch.nn.Linear(6, 3)
        torch.testing.assert_close(whitening.project(linear, features), linear(whitened.float()), atol=1e-4, rtol=1e-4)

    def test_epsilon_bounds_the_scaling_of_directions_the_catalog_does_not_span(self):
        features = torch.zeros(10, 4)
        features[:, 0] = torch.arange(10.0)  # one direction spanned, three not
        whitening = FeatureWhitening(4)
        whitening.fit(features, epsilon=0.1)
        assert torch.isfinite(whitening.transform).all()
        scales = whitening.transform.norm(dim=0).sort().values
        mean_variance = features[:, 0].var(unbiased=False) / 4
        torch.testing.assert_close(scales[-1], (0.1 * mean_variance).rsqrt())

    def test_fewer_than_two_rows_is_an_error(self):
        with pytest.raises(ValueError, match="at least 2"):
            FeatureWhitening(3).fit(torch.ones(1, 3))


def all_parameters_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Parameters and every buffer (the content features too, which are not in the state dict) equal."""
    sa, sb = (dict(m.named_parameters()) | dict(m.named_buffers()) for m in (a, b))
    return sa.keys() == sb.keys() and all(sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa)


class TestGenRecModel:
    def setup_method(self):
        torch.manual_seed(0)
        self.tester = GenRecModelTester()

    # ---------------------------------------------------------------------------------------------- forward / loss
    def test_forward_shapes(self):
        config, inputs = self.tester.prepare_config_and_inputs_for_common()
        model = self.tester.create_model(config).eval()
        out = model(**inputs)
        batch, length = inputs["item_ids"].shape
        assert out.interest_embeds.shape == (batch, length, config.hidden_size)
        assert out.last_interest_embeds.shape == (batch, config.hidden_size)
        assert out.logits.shape == (batch, config.num_items + 1)
        assert torch.isneginf(out.logits[:, 0]).all()
        assert torch.isfinite(out.logits[:, 1:]).all()
        assert out.loss is None
        # the last interest vector is the one at each history's last real position
        rows = torch.arange(batch)
        torch.testing.assert_close(
            out.last_interest_embeds, out.interest_embeds[rows, torch.tensor(self.tester.lengths) - 1]
        )
        # the logits score the last interest vector against the stored catalog
        expected = out.last_interest_embeds @ model.catalog_embeddings()[1:].T
        torch.testing.assert_close(out.logits[:, 1:], expected)
        assert model.train()(**inputs).logits is None  # training skips the full-catalog scores

    def test_the_item_table_embeds_history_items_and_scores_candidates(self):
        config, inputs = self.tester.prepare_config_and_inputs_for_common()
        model = self.tester.create_model(config).eval()
        rows = torch.arange(config.num_items + 1)
        torch.testing.assert_close(model.catalog_embeddings(), model.embed_items(rows))
        # history items enter the first layer times sqrt(d), plus the position counted back from the last item
        captured = []
        model.layers[0].register_forward_hook(lambda module, args, output: captured.append(args[0]))
        model(**inputs)
        mask = inputs["attention_mask"].bool()
        positions = model.position_ids(mask)
        expected = (
            model.embed_items(inputs["item_ids"]) * config.hidden_size**0.5 + model.position_embeddings[positions]
        )
        torch.testing.assert_close(captured[0], expected)

    def test_eager_and_sdpa_attention_give_the_same_scores(self):
        config, inputs = self.tester.prepare_config_and_inputs_for_common()
        scores = {}
        for implementation in ("eager", "sdpa"):
            torch.manual_seed(0)
            model = AutoModel.from_config(self.tester.get_config(), attn_implementation=implementation).eval()
            assert model.config._attn_implementation == implementation
            scores[implementation] = model(**inputs).logits
        torch.testing.assert_close(scores["eager"], scores["sdpa"], rtol=1e-5, atol=1e-5)

    def test_recency_positions_make_a_history_end_look_the_same_whatever_its_length(self):
        config = self.tester.get_config(hidden_dropout_prob=0.0, attention_dropout_prob=0.0)
        model = self.tester.create_model(config).eval()
        ids = torch.tensor([[3, 4, 5, 0, 0], [3, 4, 5, 6, 7]])
        positions = model.position_ids(ids != 0)
        assert positions.tolist() == [[2, 1, 0, 0, 0], [4, 3, 2, 1, 0]]
        # the last three items of both histories are embedded alike, so the longer history's extra past is the only
        # difference at its end; the same three items alone give the shorter history's vectors
        _, last = model.encode_histories(ids)
        _, alone = model.encode_histories(ids[:1, :3])
        torch.testing.assert_close(last[0], alone[0])

    def test_causal_positions_ignore_the_future(self):
        config, inputs = self.tester.prepare_config_and_inputs_for_common()
        model = self.tester.create_model(config).eval()
        changed = inputs["item_ids"].clone()
        changed[0, 5] = changed[0, 5] % config.num_items + 1
        before = model(**inputs).interest_embeds
        after = model(changed, inputs["attention_mask"]).interest_embeds
        torch.testing.assert_close(before[0, :5], after[0, :5])
        assert not torch.allclose(before[0, 5:], after[0, 5:])

    def test_loss_per_position_and_last_position(self):
        config, item_ids, mask, labels, last_labels = self.tester.prepare_config_and_inputs()
        model = self.tester.create_model(config).eval()
        per_position = model(item_ids, mask, labels=labels).loss
        last = model(item_ids, mask, labels=last_labels).loss
        for loss in (per_position, last):
            assert loss.dim() == 0 and torch.isfinite(loss) and loss > 0 and loss.requires_grad
        # per-position labels that keep only each history's last position give the last-position loss
        only_last = torch.full_like(labels, -100)
        only_last[torch.arange(len(item_ids)), torch.tensor(self.tester.lengths) - 1] = last_labels
        torch.testing.assert_close(model(item_ids, mask, labels=only_last).loss, last)
        # the loss is a mean over labelled positions: the cross-entropy of the eval logits at the last position
        logits = model(item_ids, mask).logits
        torch.testing.assert_close(last, F.cross_entropy(logits, last_labels))
        # num_items_in_batch (gradient accumulation) divides the summed loss instead
        num_labelled = int((labels > 0).sum())
        summed = model(item_ids, mask, labels=labels, num_items_in_batch=2 * num_labelled).loss
        torch.testing.assert_close(summed, per_position / 2)

    def test_history_longer_than_max_seq_len_is_rejected(self):
        config = self.tester.get_config()
        model = self.tester.create_model(config)
        with pytest.raises(ValueError, match="max_seq_len"):
            model(torch.ones(2, config.max_seq_len + 1, dtype=torch.long))

    # ---------------------------------------------------------------------------------------------- save / load
    def test_save_load_equivalence(self, tmp_path):
        config, inputs = self.tester.prepare_config_and_inputs_for_common()
        model = self.tester.create_model(config).eval()
        model.save_pretrained(tmp_path)
        loaded, info = GenRecModel.from_pretrained(tmp_path, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
        assert not info["error_msgs"]
        assert all_parameters_equal(model, loaded)  # catalog buffers included
        assert loaded.item_id_known.dtype == torch.bool and loaded.item_image_mask.dtype == torch.bool
        torch.testing.assert_close(loaded.eval()(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)

    def test_content_whitening_is_saved_with_the_model_and_absent_from_older_checkpoints(self, tmp_path):
        config, inputs = self.tester.prepare_config_and_inputs_for_common()
        model = self.tester.create_model(config).eval()
        unwhitened = model(**inputs).logits
        model.fit_content_whitening()
        whitened = model(**inputs).logits
        assert not torch.allclose(whitened, unwhitened)
        model.save_pretrained(tmp_path)
        loaded = GenRecModel.from_pretrained(tmp_path).eval()
        assert all_parameters_equal(model, loaded)
        torch.testing.assert_close(loaded(**inputs).logits, whitened)

        # a checkpoint saved before whitening existed loads with the identity, i.e. the model it was
        weights = load_file(tmp_path / "model.safetensors")
        save_file({k: v for k, v in weights.items() if "whitening" not in k}, tmp_path / "model.safetensors")
        older = GenRecModel.from_pretrained(tmp_path).eval()
        assert torch.equal(older.item_tower.text_whitening.transform, torch.eye(config.text_feature_dim))
        assert not older.item_tower.image_whitening.mean.any()
        torch.testing.assert_close(older(**inputs).logits, unwhitened)

    @pytest.mark.parametrize("fusion", ["gate", "sum", "id", "content"])
    def test_every_trainable_parameter_gets_a_gradient(self, fusion):
        config, item_ids, mask, labels, _ = self.tester.prepare_config_and_inputs(fusion=fusion)
        model = self.tester.create_model(config).train()
        model(item_ids, mask, labels=labels).loss.backward()
        names = {name for name, _ in model.named_parameters()}
        assert ("item_tower.gate.weight" in names) == (fusion == "gate")
        assert ("item_tower.id_embeddings.weight" in names) == (fusion != "content")
        assert ("item_tower.text_proj.weight" in names) == (fusion != "id")
        assert ("item_tower.image_proj.weight" in names) == (fusion != "id")
        without_gradient = [
            name
            for name, parameter in model.named_parameters()
            if parameter.requires_grad and (parameter.grad is None or not parameter.grad.abs().sum() > 0)
        ]
        assert not without_gradient, f"fusion={fusion}: no gradient for {without_gradient}"

    def test_deterministic_init(self):
        config = self.tester.get_config()
        torch.manual_seed(123)
        first = GenRecModel(config)
        torch.manual_seed(123)
        second = GenRecModel(config)
        torch.manual_seed(124)
        third = GenRecModel(config)
        assert all_parameters_equal(first, second)
        assert not all_parameters_equal(first, third)
        # LayerNorms start at identity, linear biases at zero, weights at initializer_range
        assert torch.equal(first.final_norm.weight, torch.ones(config.hidden_size))
        assert torch.equal(first.item_tower.text_proj.bias, torch.zeros(config.hidden_size))
        weight = first.layers[0].feed_forward[0].weight
        assert abs(weight.std().item() - config.initializer_range) < 0.005
        assert torch.equal(first.item_tower.id_embeddings.weight[0], torch.zeros(config.hidden_size))

    # ---------------------------------------------------------------------------------------------- config / auto
    def test_auto_config_round_trip(self, tmp_path):
        config = self.tester.get_config(fusion="sum", id_dropout=0.3, num_id_items=40)
        config.save_pretrained(tmp_path)
        loaded = AutoConfig.from_pretrained(tmp_path)
        assert type(loaded) is GenRecConfig
        drop = lambda d: {k: v for k, v in d.items() if k != "_name_or_path"}  # noqa: E731
        assert drop(loaded.to_dict()) == drop(config.to_dict())
        assert (loaded.fusion, loaded.num_id_items, loaded.intermediate_size) == ("sum", 40, 37)

    def test_config_defaults(self):
        config = GenRecConfig(num_items=10, hidden_size=8, num_attention_heads=2)
        assert config.num_id_items == 10 and config.intermediate_size == 32

    def test_auto_model_from_config(self):
        model = AutoModel.from_config(self.tester.get_config())
        assert type(model) is GenRecModel
        assert model.config.model_type == "genrec"

    @pytest.mark.parametrize(
        "overrides, field",
        [
            ({"hidden_size": 30}, "hidden_size"),
            ({"fusion": "concat"}, "fusion"),
            ({"num_id_items": 60}, "num_id_items"),
            ({"id_dropout": 1.0}, "id_dropout"),
            ({"loss_negatives": "hard"}, "loss_negatives"),
            ({"item_encoder_type": "vit"}, "item_encoder_type"),
            ({"text_feature_dim": 0, "image_feature_dim": 0}, "fusion"),
            ({"num_items": 0, "num_id_items": 0}, "num_items"),
        ],
    )
    def test_config_validation_names_the_field(self, overrides, field):
        with pytest.raises(ValueError, match=rf"GenRecConfig\.{field}="):
            self.tester.get_config(**overrides)

    def test_id_only_config_without_content_features_is_valid(self):
        config = self.tester.get_config(fusion="id", text_feature_dim=0, image_feature_dim=0)
        assert GenRecModel(config).item_tower.text_proj is None


# -------------------------------------------------------------------------------------------------- losses
class TestLosses:
    def setup_method(self):
        torch.manual_seed(0)
        self.tester = GenRecModelTester(batch_size=4, lengths=(7, 6, 5, 3))

    def _loss_and_grads(self, config, item_ids, mask, labels):
        model = self.tester.create_model(config).eval()
        loss = model(item_ids, mask, labels=labels).loss
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    def test_chunked_loss_equals_unchunked(self, monkeypatch):
        config, item_ids, mask, labels, _ = self.tester.prepare_config_and_inputs()
        calls = []
        original = losses_genrec._chunk_cross_entropy_sum

        def counting(queries, *args):
            calls.append(len(queries))
            return original(queries, *args)

        monkeypatch.setattr(losses_genrec, "_chunk_cross_entropy_sum", counting)
        whole_loss, whole_grads = self._loss_and_grads(config, item_ids, mask, labels)
        assert calls == [int((labels > 0).sum())]
        calls.clear()
        chunked_loss, chunked_grads = self._loss_and_grads(
            self.tester.get_config(loss_chunk_size=4), item_ids, mask, labels
        )
        assert max(calls) <= 4 and len(calls) >= 2 * math.ceil(int((labels > 0).sum()) / 4)  # forward + recompute
        torch.testing.assert_close(chunked_loss, whole_loss)
        assert whole_grads.keys() == chunked_grads.keys()
        for name in whole_grads:
            torch.testing.assert_close(chunked_grads[name], whole_grads[name], msg=name)

    def test_sampled_loss_is_finite_and_trains(self):
        config, item_ids, mask, labels, _ = self.tester.prepare_config_and_inputs(
            loss_negatives="sampled", num_sampled_negatives=8
        )
        model = self.tester.create_model(config).train()
        loss = model(item_ids, mask, labels=labels).loss
        assert torch.isfinite(loss) and loss > 0
        loss.backward()
        assert model.item_tower.gate.weight.grad.abs().sum() > 0

    def test_sampled_loss_never_counts_the_positive_as_a_negative(self):
        """With so many uniform draws that every item (and every positive) is drawn again, the deduplicated
        candidate set is the whole catalog exactly once and the log-Q term is 0: the sampled loss must then equal the
        full-catalog loss. A positive drawn again and kept as a negative would make it larger."""
        config, item_ids, mask, labels, _ = self.tester.prepare_config_and_inputs(num_items=6)
        model = self.tester.create_model(config).eval()
        full = model(item_ids, mask, labels=labels).loss
        model.config.loss_negatives, model.config.num_sampled_negatives = "sampled", 500
        torch.manual_seed(1)
        sampled = model(item_ids, mask, labels=labels).loss
        torch.testing.assert_close(sampled, full)

    def test_sampled_info_nce_with_repeated_positives(self):
        """Queries that share a positive each treat it as their positive only; other queries' positives are their
        negatives."""
        torch.manual_seed(0)
        queries = torch.randn(3, 8)
        candidates = torch.tensor([2, 5, 9])
        vectors = torch.randn(3, 8)
        labels = torch.tensor([5, 5, 9])
        loss = sampled_info_nce(queries, labels, candidates, vectors, torch.zeros(3))
        logits = queries @ vectors.T
        expected = F.cross_entropy(logits, torch.tensor([1, 1, 2]), reduction="sum")
        torch.testing.assert_close(loss, expected)

    def test_log_q_correction_shifts_the_loss(self):
        popularity = torch.tensor([0.0, 100.0, 10.0, 1.0, 1.0])  # row 0 is padding
        candidates = torch.tensor([1, 2, 3, 4])
        log_q = sampling_log_q(candidates, popularity, num_positions=4, num_uniform=1, num_items=4)
        assert torch.all(log_q <= 0) and log_q[0] > log_q[1] > log_q[2]  # popular items are likelier candidates
        assert log_q[2] == log_q[3]
        torch.manual_seed(0)
        queries = torch.randn(2, 8)
        vectors = torch.randn(4, 8)
        labels = torch.tensor([1, 3])
        corrected = sampled_info_nce(queries, labels, candidates, vectors, log_q)
        plain = sampled_info_nce(queries, labels, candidates, vectors, torch.zeros(4))
        assert not torch.isclose(corrected, plain)
        expected = F.cross_entropy(queries @ vectors.T - log_q, torch.tensor([0, 2]), reduction="sum")
        torch.testing.assert_close(corrected, expected)
        # a constant shift of every log-Q leaves the softmax (and the loss) unchanged
        torch.testing.assert_close(sampled_info_nce(queries, labels, candidates, vectors, log_q - 3.0), corrected)

    def test_log_q_without_popularity_is_uniform(self):
        log_q = sampling_log_q(torch.tensor([1, 2, 3]), torch.zeros(11), num_positions=2, num_uniform=3, num_items=10)
        assert torch.allclose(log_q, log_q[0].expand(3)) and torch.isfinite(log_q).all()


# -------------------------------------------------------------------------------------------------- catalog
class TestCatalog:
    def setup_method(self):
        torch.manual_seed(0)
        self.tester = GenRecModelTester()

    def test_set_item_features_shape_errors(self):
        model = self.tester.create_model(self.tester.get_config())
        with pytest.raises(ValueError, match=r"text_features must have shape \(50, 16\)"):
            model.set_item_features(text_features=torch.zeros(51, 16))  # a padding row is not expected
        with pytest.raises(ValueError, match=r"image_features must have shape \(50, 8\)"):
            model.set_item_features(image_features=torch.zeros(50, 16))
        with pytest.raises(ValueError, match="image_mask"):
            model.set_item_features(image_mask=torch.ones(49, dtype=torch.bool))
        with pytest.raises(ValueError, match=r"counts must have shape \(50,\)"):
            model.set_item_popularity(torch.ones(51))
        before = model.item_text_features.clone()
        model.set_item_features(text_features=torch.ones(50, 16))
        assert torch.equal(model.item_text_features[1:], torch.ones(50, 16))
        assert torch.equal(model.item_text_features[0], before[0])  # the padding row is untouched

    def test_set_item_popularity_marks_unseen_items_unknown(self):
        config = self.tester.get_config(num_id_items=45)
        model = self.tester.create_model(config).eval()
        counts = torch.ones(50)
        counts[[2, 9]] = 0  # items 3 and 10 never seen in training
        model.set_item_popularity(counts)
        expected = torch.zeros(51, dtype=torch.bool)
        expected[1:46] = True  # items 46..50 have no ID embedding at all
        expected[[3, 10]] = False
        assert torch.equal(model.item_id_known, expected)
        assert torch.equal(model.item_popularity[1:], counts)
        # an unknown item is embedded from content only: its ID row does not matter
        before = model.embed_items(torch.tensor([3, 4]))
        with torch.no_grad():
            model.item_tower.id_embeddings.weight[[3, 4]] += 1.0
        after = model.embed_items(torch.tensor([3, 4]))
        torch.testing.assert_close(after[0], before[0])
        assert not torch.allclose(after[1], before[1])
        # new counts recompute the flags from scratch; the flags can also be left alone
        model.set_item_popularity(torch.ones(50))
        assert model.item_id_known[3] and not model.item_id_known[46]
        model.set_item_popularity(counts, mark_unseen_as_unknown=False)
        assert model.item_id_known[3]

    def test_add_items_are_content_only_and_survive_save_load(self, tmp_path):
        config, inputs = self.tester.prepare_config_and_inputs_for_common()
        model = self.tester.create_model(config).eval()
        new_text = F.normalize(torch.randn(2, 16), dim=-1)
        new_image = F.normalize(torch.randn(2, 8), dim=-1)
        indices = model.add_items(new_text, new_image, torch.tensor([True, False]))
        assert indices.tolist() == [51, 52]
        assert (model.config.num_items, model.config.num_id_items) == (52, 50)
        assert model.item_text_features.shape == (53, 16) and model.item_id_known.shape == (53,)
        assert not model.item_id_known[51:].any() and model.item_popularity[51:].eq(0).all()
        assert model.item_tower.id_embeddings.num_embeddings == 51  # no ID rows for cold items
        # content only: the ID table does not touch cold items, their content does
        cold_before = model.embed_items(indices)
        known_before = model.embed_items(torch.tensor([1]))
        with torch.no_grad():
            model.item_tower.id_embeddings.weight.add_(torch.randn_like(model.item_tower.id_embeddings.weight))
        torch.testing.assert_close(model.embed_items(indices), cold_before)
        assert not torch.allclose(model.embed_items(torch.tensor([1])), known_before)
        logits = model(**inputs).logits
        assert logits.shape == (3, 53) and torch.isfinite(logits[:, 51:]).all()
        # cold items can be in a history too
        cold_history = torch.tensor([[5, 51, 52]])
        assert torch.isfinite(model(cold_history).logits[:, 1:]).all()

        model.save_pretrained(tmp_path)
        loaded, info = GenRecModel.from_pretrained(tmp_path, output_loading_info=True)
        assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
        assert (loaded.config.num_items, loaded.config.num_id_items) == (52, 50)
        assert all_parameters_equal(model, loaded)
        torch.testing.assert_close(loaded.eval()(**inputs).logits, logits, rtol=0, atol=0)

    def test_add_items_shape_errors(self):
        model = self.tester.create_model(self.tester.get_config())
        with pytest.raises(ValueError, match="same number of rows"):
            model.add_items(torch.zeros(2, 16), torch.zeros(3, 8))
        with pytest.raises(ValueError, match="at least one"):
            model.add_items()
        with pytest.raises(ValueError, match="text_features rows"):
            model.add_items(torch.zeros(2, 15))
        assert model.config.num_items == 50 and model.item_text_features.shape[0] == 51

    @pytest.mark.parametrize("how", ["unseen_in_training", "cold"])
    def test_item_without_id_in_a_history_is_never_dropped(self, how):
        model = self.tester.create_model(self.tester.get_config()).eval()
        if how == "cold":
            (item,) = model.add_items(torch.randn(1, 16), torch.randn(1, 8), torch.tensor([True])).tolist()
        else:
            item = 7
            counts = torch.ones(50)
            counts[item - 1] = 0
            model.set_item_popularity(counts)
        assert not model.item_id_known[item]
        for history in ([[3, item, 12]], [[3, 12, item]]):
            item_ids = torch.tensor(history)
            before = model(item_ids)
            assert before.last_interest_embeds is not None
            with torch.no_grad():
                model.item_text_features[item] = F.normalize(torch.randn(16), dim=-1)
            after = model(item_ids)
            assert not torch.allclose(before.last_interest_embeds, after.last_interest_embeds)
            # its position is read, not skipped: dropping the item gives a different interest vector
            dropped = torch.tensor([[i for i in history[0] if i != item]])
            assert not torch.allclose(model(dropped).last_interest_embeds, after.last_interest_embeds)


# -------------------------------------------------------------------------------------------------- recommend
class TestRecommend:
    def setup_method(self):
        torch.manual_seed(0)
        self.tester = GenRecModelTester()
        self.model = self.tester.create_model(self.tester.get_config()).eval()

    def test_recommend_matches_logits_without_exclusion(self):
        _, inputs = self.tester.prepare_config_and_inputs_for_common()
        result = self.model.recommend(**inputs, k=5, exclude_seen=False)
        logits = self.model(**inputs).logits
        top = logits.topk(5, dim=1)
        assert torch.equal(result.item_indices, top.indices)
        torch.testing.assert_close(result.scores, top.values)
        assert not result.popularity_fallback.any()

    def test_exclude_seen_removes_history_items(self):
        _, inputs = self.tester.prepare_config_and_inputs_for_common()
        everything = self.model.recommend(**inputs, k=50, exclude_seen=False)
        result = self.model.recommend(**inputs, k=50, exclude_seen=True)
        for row in range(3):
            seen = set(inputs["item_ids"][row][inputs["attention_mask"][row].bool()].tolist())
            assert seen <= set(everything.item_indices[row].tolist())
            ranked = result.item_indices[row][torch.isfinite(result.scores[row])].tolist()
            assert not seen & set(ranked)
            assert len(ranked) == 50 - len(seen)
            assert 0 not in result.item_indices[row].tolist()

    def test_empty_history_gets_popularity_ranking(self):
        popularity = torch.rand(50, generator=torch.Generator().manual_seed(3)) * 100
        self.model.set_item_popularity(popularity)
        item_ids = torch.tensor([[0, 0, 0], [4, 9, 0]])
        result = self.model.recommend(item_ids, k=5)
        assert result.popularity_fallback.tolist() == [True, False]
        assert result.item_indices[0].tolist() == (popularity.topk(5).indices + 1).tolist()
        torch.testing.assert_close(result.scores[0], popularity.topk(5).values)
        assert result.item_indices[1].tolist() != result.item_indices[0].tolist()

    def test_k_larger_than_catalog_is_clamped(self):
        result = self.model.recommend(torch.tensor([[1, 2, 3]]), k=1000)
        assert result.item_indices.shape == (1, 50) and result.scores.shape == (1, 50)
        assert sorted(result.item_indices[0].tolist()) == list(range(1, 51))
        assert torch.isneginf(result.scores[0, -3:]).all()  # the seen items come last

"""`loss_negatives="auto"` (the default): the full softmax up to `SAMPLED_LOSS_ABOVE_ITEMS` catalog items, the
sampled softmax above. The config keeps the chosen mode (a reload never chooses again), explicit choices stay as
given at any size, and a training run says which loss it used and why in its log, `metrics.json` and model card."""

import json
import logging

import pytest
from test_distributed import tiny_data  # noqa: F401  (the fixture: 150 synthetic users, 60 items, prepared)

from genrec_hf import GenRecConfig, configuration_genrec
from genrec_hf.configuration_genrec import SAMPLED_LOSS_ABOVE_ITEMS, choose_loss_negatives
from genrec_hf.hub import build_model_card
from genrec_hf.training import ModelArguments, train

LIMIT = SAMPLED_LOSS_ABOVE_ITEMS


def test_auto_is_the_default_and_chooses_by_catalog_size():
    assert ModelArguments().loss_negatives == "auto"
    assert GenRecConfig(num_items=LIMIT).loss_negatives == "full"
    assert GenRecConfig(num_items=LIMIT + 1).loss_negatives == "sampled"
    assert GenRecConfig(num_items=LIMIT + 1, loss_negatives="auto").loss_negatives == "sampled"
    mode, reason = choose_loss_negatives(LIMIT + 1)
    assert mode == "sampled" and f"{LIMIT + 1:,} catalog items" in reason and f"{LIMIT:,}" in reason
    assert choose_loss_negatives(LIMIT)[0] == "full"


def test_explicit_choices_are_kept_at_any_size():
    assert GenRecConfig(num_items=10 * LIMIT, loss_negatives="full").loss_negatives == "full"
    assert GenRecConfig(num_items=2, loss_negatives="sampled").loss_negatives == "sampled"
    with pytest.raises(ValueError, match=r"loss_negatives='hard' is invalid: one of \('auto', 'full', 'sampled'\)"):
        GenRecConfig(loss_negatives="hard")


def test_the_saved_config_holds_the_chosen_mode(tmp_path):
    GenRecConfig(num_items=LIMIT + 1, fusion="id", text_feature_dim=0, image_feature_dim=0).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["loss_negatives"] == "sampled"
    # an explicit full softmax on a large catalog is not turned into the automatic choice by a reload
    GenRecConfig(num_items=LIMIT + 1, loss_negatives="full", fusion="id").save_pretrained(tmp_path)
    assert GenRecConfig.from_pretrained(tmp_path).loss_negatives == "full"


@pytest.mark.parametrize(
    ("requested", "trained", "stated"),
    [
        ("auto", "sampled", "sampled softmax chosen automatically: 60 catalog items is over 10"),
        ("full", "full", "full softmax, set explicitly"),
    ],
)
def test_training_states_the_loss_and_why_in_log_metrics_and_card(
    tiny_data,  # noqa: F811
    tmp_path,
    monkeypatch,
    caplog,
    requested,
    trained,
    stated,
):
    monkeypatch.setattr(configuration_genrec, "SAMPLED_LOSS_ABOVE_ITEMS", 10)  # the 60-item catalog counts as large
    model = ModelArguments(item_encoder="none", fusion="id", hidden_size=16, max_seq_len=10, loss_negatives=requested)
    with caplog.at_level(logging.INFO, logger="genrec_hf.train"):
        result = train(
            tiny_data,
            tmp_path,
            model=model,
            evaluation={"bootstrap_samples": 20},
            training_args={
                "max_steps": 2, "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False,
                "use_cpu": True, "dataloader_pin_memory": False, "disable_tqdm": True, "report_to": "none",
            },
        )  # fmt: skip
    assert result.model.config.loss_negatives == trained
    assert f"training loss: {stated}" in caplog.text
    saved = result.save()
    assert stated in json.loads((saved / "metrics.json").read_text())["model"]["loss_choice"]
    card = build_model_card(result.model, result.processor, saved).content
    assert f"Loss: {stated}" in card

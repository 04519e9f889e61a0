"""GenRecTrainer: few-step training on a learnable pattern, gradient accumulation, resume, and evaluation metrics.

The learnable pattern: catalog item `i` is always followed by item `i + 1` (mod N). A sequence model learns it in a
few dozen steps; the popularity baseline cannot, so the trained model must beat it on valid HR@10.
"""

import json
import math
import random
import shutil
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModel, TrainerCallback, TrainingArguments

import genrec_hf  # noqa: F401  (registers the genrec Auto classes)
from genrec_hf import GenRecConfig, GenRecModel, GenRecProcessor
from genrec_hf.evaluation import popularity_baseline_ranks, ranking_metrics
from genrec_hf.sequences import eval_examples, item_counts, train_sequences
from genrec_hf.training import GenRecTrainer, SequenceCollator
from genrec_hf.training.trainer import DEFAULT_WEIGHT_AVERAGING_EPOCHS
from genrec_hf.training.weight_averaging import TRAINING_WEIGHTS_NAME, WeightAverage, horizon_decay

NUM_ITEMS = 30
MAX_SEQ_LEN = 10
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_dropout_prob=0.0, id_dropout=0.0)


def asin(index: int) -> str:
    return f"P{index:03d}"


def pattern_splits(num_users: int = 120, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Train and valid splits (`user_id, history, target` as `parent_asin`s) of the pattern `i -> i + 1 (mod N)`.

    Each user starts at a random item and buys 4 to 9 items in a row; valid asks for the item after the last one.
    Starting items are drawn from a skewed distribution, so popularity is informative but far from the pattern.
    """
    rng = random.Random(seed)
    users, train_histories, train_targets, valid_histories, valid_targets = [], [], [], [], []
    for user in range(num_users):
        start = min(int(rng.expovariate(1 / 8)), NUM_ITEMS - 1)
        sequence = [asin((start + step) % NUM_ITEMS + 1) for step in range(rng.randint(5, 10))]
        users.append(f"U{user:04d}")
        train_histories.append(sequence[:-2])
        train_targets.append(sequence[-2])
        valid_histories.append(sequence[:-1])
        valid_targets.append(sequence[-1])
    train = Dataset.from_dict({"user_id": users, "history": train_histories, "target": train_targets})
    valid = Dataset.from_dict({"user_id": users, "history": valid_histories, "target": valid_targets})
    return train, valid


@pytest.fixture(scope="module")
def pattern_data():
    """`(processor, train sequences, valid examples, training item counts)` of the pattern."""
    processor = GenRecProcessor.without_content([asin(i) for i in range(1, NUM_ITEMS + 1)], max_seq_len=MAX_SEQ_LEN)
    train_split, valid_split = pattern_splits()
    train = train_sequences(train_split, processor)
    valid = eval_examples(valid_split, processor)
    return processor, train, valid, item_counts(train, NUM_ITEMS)


def make_model(counts: torch.Tensor, seed: int = 0, **overrides) -> GenRecModel:
    """A tiny gated content + ID model whose items carry fixed random 8-d text features."""
    config = GenRecConfig(
        **{
            "num_items": NUM_ITEMS,
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_seq_len": MAX_SEQ_LEN,
            "text_feature_dim": 8,
            "image_feature_dim": 0,
            "item_encoder_type": "text",
            "item_encoder_name_or_path": None,
            **overrides,
        }
    )
    torch.manual_seed(seed)
    model = GenRecModel(config)
    generator = torch.Generator().manual_seed(seed + 1)
    model.set_item_features(torch.nn.functional.normalize(torch.randn(NUM_ITEMS, 8, generator=generator), dim=-1))
    model.set_item_popularity(counts)
    return model


def make_args(output_dir, **overrides) -> TrainingArguments:
    defaults = dict(
        output_dir=str(output_dir),
        use_cpu=True,
        report_to="none",
        remove_unused_columns=False,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
        learning_rate=1e-2,
        lr_scheduler_type="constant",
        logging_steps=5,
        eval_strategy="no",
        save_strategy="no",
        dataloader_pin_memory=False,
        disable_tqdm=True,
        seed=0,
    )
    return TrainingArguments(**{**defaults, **overrides})


def make_trainer(model, args, train=None, valid=None, **kwargs) -> GenRecTrainer:
    return GenRecTrainer(
        model=model, args=args, train_dataset=train, eval_dataset=valid, data_collator=SequenceCollator(), **kwargs
    )


def parameters(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def assert_same_parameters(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst <= atol, f"parameters differ by up to {worst:.3g}"


# ----------------------------------------------------------------------------------------------------------------
# Few-step training on the pattern
# ----------------------------------------------------------------------------------------------------------------
def test_few_steps_learn_the_pattern_beat_popularity_and_save_a_loadable_model(tmp_path, pattern_data):
    processor, train, valid, counts = pattern_data
    model = make_model(counts, **NO_DROPOUT)
    trainer = make_trainer(model, make_args(tmp_path / "run", max_steps=40), train, valid, processing_class=processor)
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()

    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    assert len(losses) == 8
    assert losses[-1] < 0.6 * losses[0], losses
    popularity = ranking_metrics(popularity_baseline_ranks(valid, counts, exclude_history=False))
    assert after["eval_hr@10"] >= 0.9 and popularity["hr@10"] < 0.6, (after, popularity)
    assert after["eval_hr@10"] > before["eval_hr@10"] + 0.2
    assert after["eval_loss"] < before["eval_loss"]

    out = tmp_path / "saved"
    trainer.save_model(str(out))
    assert {"config.json", "model.safetensors", "processor_config.json"} <= {p.name for p in out.iterdir()}
    loaded = AutoModel.from_pretrained(out).eval()
    assert type(loaded) is GenRecModel
    model.eval()
    batch = SequenceCollator()([valid[i] for i in range(len(valid))])
    with torch.no_grad():
        expected, _ = model.score_histories(batch["item_ids"], batch["attention_mask"])
        scores, _ = loaded.score_histories(batch["item_ids"], batch["attention_mask"])
    torch.testing.assert_close(scores, expected, rtol=0, atol=0)
    assert GenRecProcessor.from_pretrained(out).item_vocab == processor.item_vocab


# ----------------------------------------------------------------------------------------------------------------
# Gradient accumulation
# ----------------------------------------------------------------------------------------------------------------
def one_sgd_step(tmp_path, train: Dataset, counts, batch_size: int, accumulation: int, loss_kwargs: bool = True):
    """Parameters after one SGD step over all of `train` (no dropout, no clipping)."""
    model = make_model(counts, seed=3, **NO_DROPOUT)
    args = make_args(
        tmp_path / f"ga{batch_size}x{accumulation}{loss_kwargs}",
        optim="sgd",
        learning_rate=0.01,
        max_grad_norm=0.0,
        max_steps=1,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
    )
    trainer = make_trainer(model, args, train)
    trainer.model_accepts_loss_kwargs = loss_kwargs
    initial = parameters(model)
    trainer.train()
    return initial, parameters(model)


def test_gradient_accumulation_equals_the_larger_batch_with_unequal_lengths(tmp_path, pattern_data):
    _, train, _, counts = pattern_data
    # Four sequences with 3, 8, 4 and 6 labelled positions: every split into two micro-batches of two has unequal
    # position counts, so averaging per micro-batch would weight positions differently from the 2B batch.
    by_length = {}
    for i, row in enumerate(train):
        by_length.setdefault(len(row["item_ids"]), i)
    rows = [by_length[length] for length in (4, 9, 5, 7)]
    subset = train.select(rows)
    assert sorted(subset["length"]) == [3, 4, 6, 8]

    initial, accumulated = one_sgd_step(tmp_path, subset, counts, batch_size=2, accumulation=2)
    _, large_batch = one_sgd_step(tmp_path, subset, counts, batch_size=4, accumulation=1)
    assert_same_parameters(accumulated, large_batch, atol=1e-6)
    moved = max((accumulated[k] - initial[k]).abs().max().item() for k in initial)
    assert moved > 1e-3  # the step is not a no-op

    # Control: a per-micro-batch mean (the loss not normalised by the positions of the whole step) does differ.
    _, per_batch_mean = one_sgd_step(tmp_path, subset, counts, batch_size=2, accumulation=2, loss_kwargs=False)
    assert max((per_batch_mean[k] - large_batch[k]).abs().max().item() for k in initial) > 1e-4


# ----------------------------------------------------------------------------------------------------------------
# Resume
# ----------------------------------------------------------------------------------------------------------------
class KillAt(TrainerCallback):
    """Stops training after `step` optimizer steps, as if the process were killed there."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control


def test_resume_from_checkpoint_matches_an_uninterrupted_run_with_dropout(tmp_path, pattern_data):
    processor, train, valid, counts = pattern_data
    # 120 sequences / 16 = 8 steps per epoch: the checkpoint at step 5 is mid-epoch and training crosses an epoch;
    # dropout, ID-dropout, AdamW and a warmup + linear schedule all have state to restore.
    overrides = dict(max_steps=12, save_strategy="steps", save_steps=5, lr_scheduler_type="linear", warmup_steps=2)

    def run(output_dir, callbacks=(), resume=None):
        model = make_model(counts, seed=1, hidden_dropout_prob=0.2, attention_dropout_prob=0.2, id_dropout=0.2)
        trainer = make_trainer(model, make_args(output_dir, **overrides), train, valid, callbacks=list(callbacks))
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    full = run(tmp_path / "full")
    killed = run(tmp_path / "killed", callbacks=[KillAt(7)])
    assert killed.state.global_step == 7
    assert sorted(p.name for p in (tmp_path / "killed").glob("checkpoint-*")) == ["checkpoint-5"]
    resumed = run(tmp_path / "killed", resume=str(tmp_path / "killed" / "checkpoint-5"))

    assert resumed.state.global_step == full.state.global_step == 12
    assert_same_parameters(parameters(resumed.model), parameters(full.model), atol=1e-6)
    # The interrupted run really was behind (the comparison is not vacuous).
    assert max((parameters(killed.model)[k] - v).abs().max().item() for k, v in parameters(full.model).items()) > 1e-4
    full_metrics, resumed_metrics = full.evaluate(), resumed.evaluate()
    for key in ("eval_hr@10", "eval_ndcg@10", "eval_mrr", "eval_loss"):
        assert resumed_metrics[key] == pytest.approx(full_metrics[key], abs=1e-6)
    full_losses = [row["loss"] for row in full.state.log_history if "loss" in row]
    resumed_losses = [row["loss"] for row in resumed.state.log_history if "loss" in row]
    assert resumed_losses[-1] == pytest.approx(full_losses[-1], rel=1e-5)


class FeaturesFileOnSave(TrainerCallback):
    """Records (inode, modification time) of the run's features file after every checkpoint save."""

    def __init__(self):
        self.seen = []

    def on_save(self, args, state, control, **kwargs):
        stat = (Path(args.output_dir) / "item_features.safetensors").stat()
        self.seen.append((stat.st_ino, stat.st_mtime_ns))


def test_checkpoints_refer_to_the_features_file_the_run_writes_once(tmp_path, pattern_data):
    processor, train, valid, counts = pattern_data
    run, observe = tmp_path / "run", FeaturesFileOnSave()
    model = make_model(counts, **NO_DROPOUT)
    args = make_args(run, max_steps=6, save_strategy="steps", save_steps=2)
    trainer = make_trainer(model, args, train, valid, processing_class=processor, callbacks=[observe])
    trainer.train()

    checkpoints = sorted(run.glob("checkpoint-*"))
    assert len(checkpoints) == len(observe.seen) == 3 and len(set(observe.seen)) == 1  # written at the first only
    for checkpoint in checkpoints:
        assert not (checkpoint / "item_features.safetensors").exists()
        with safe_open(checkpoint / "model.safetensors", "pt") as weights:
            assert not [name for name in weights.keys() if name.endswith(("_features", "_mask"))]
        assert (
            json.loads((checkpoint / "config.json").read_text())["item_features_file"] == "../item_features.safetensors"
        )
    batch = SequenceCollator()([valid[i] for i in range(len(valid))])
    model.eval()
    with torch.no_grad():
        expected, _ = model.score_histories(batch["item_ids"], batch["attention_mask"])
        from_checkpoint = GenRecModel.from_pretrained(checkpoints[-1]).eval()  # step 6: the trained model
        torch.testing.assert_close(from_checkpoint.score_histories(batch["item_ids"])[0], expected, rtol=0, atol=0)

    trainer.save_model(str(run))  # the final model in the run folder: its features file is already there
    stat = (run / "item_features.safetensors").stat()
    assert (stat.st_ino, stat.st_mtime_ns) == observe.seen[0]
    trainer.save_model(str(tmp_path / "final"))  # elsewhere: self-contained
    shutil.rmtree(run)
    with torch.no_grad():
        final = GenRecModel.from_pretrained(tmp_path / "final").eval()
        torch.testing.assert_close(final.score_histories(batch["item_ids"])[0], expected, rtol=0, atol=0)


# ----------------------------------------------------------------------------------------------------------------
# Weight averaging
# ----------------------------------------------------------------------------------------------------------------
def test_weight_average_follows_the_update_rule_and_swaps_in_and_out():
    model = torch.nn.Linear(3, 2)
    model.bias.requires_grad_(False)  # frozen parameters are not averaged
    start = parameters(model)
    average = WeightAverage(model, decay=0.75)
    with torch.no_grad():
        model.weight.add_(4.0)
    average.update()
    expected = start["weight"] + 0.25 * 4.0  # 0.75 * start + 0.25 * (start + 4)
    assert set(average.average) == {"weight"}
    trained = model.weight.detach().clone()
    with average.swapped_in():
        torch.testing.assert_close(model.weight.detach(), expected)
        torch.testing.assert_close(average.trained_weights()["weight"], trained)
    torch.testing.assert_close(model.weight.detach(), trained)
    torch.testing.assert_close(average.trained_weights()["weight"], trained)
    average.copy_to_model()
    torch.testing.assert_close(model.weight.detach(), expected)
    assert horizon_decay(40) == pytest.approx(0.975)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, decay=1.0)


class RecordParameters(TrainerCallback):
    """The trained parameters after every optimizer step."""

    def __init__(self):
        self.after_step = {}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.after_step[state.global_step] = {n: p.detach().clone() for n, p in model.named_parameters()}


def test_the_trainer_evaluates_and_saves_the_average_and_keeps_the_trained_weights_beside_it(tmp_path, pattern_data):
    processor, train, valid, counts = pattern_data
    model = make_model(counts, seed=2, **NO_DROPOUT)
    initial, recorder = parameters(model), RecordParameters()
    # 8 steps per epoch, averaged over 1.5 epochs: decay 1 - 1 / 12.
    args = make_args(tmp_path / "run", num_train_epochs=2, save_strategy="epoch", eval_strategy="epoch")
    trainer = make_trainer(model, args, train, valid, callbacks=[recorder], weight_averaging_epochs=1.5)
    trainer.train()

    decay = 1 - 1 / 12
    expected = dict(initial)
    for step in sorted(recorder.after_step):
        expected = {n: decay * expected[n] + (1 - decay) * recorder.after_step[step][n] for n in expected}
        if step == 8:
            at_first_epoch = dict(expected)
    checkpoint = tmp_path / "run" / "checkpoint-8"
    saved = load_file(checkpoint / "model.safetensors")
    for name, tensor in at_first_epoch.items():
        torch.testing.assert_close(saved[name], tensor, rtol=0, atol=1e-6, msg=name)
    trained = load_file(checkpoint / TRAINING_WEIGHTS_NAME)
    assert_same_parameters(trained, recorder.after_step[8], atol=0)
    assert max((trained[n] - at_first_epoch[n]).abs().max().item() for n in trained) > 1e-3  # two different files
    # Without a best model to load, the model ends holding the last average; that is what was evaluated last.
    assert_same_parameters(parameters(trainer.model), expected, atol=1e-6)
    last_logged = [row for row in trainer.state.log_history if "eval_ndcg@10" in row][-1]
    assert trainer.evaluate()["eval_ndcg@10"] == pytest.approx(last_logged["eval_ndcg@10"], abs=1e-9)
    assert trainer.weight_averaging_epochs == 1.5


def test_a_resumed_weight_averaged_run_equals_the_uninterrupted_one(tmp_path, pattern_data):
    processor, train, valid, counts = pattern_data
    overrides = dict(max_steps=12, save_strategy="steps", save_steps=5)

    def run(output_dir, callbacks=(), resume=None, epochs=1.0):
        model = make_model(counts, seed=1, hidden_dropout_prob=0.2, attention_dropout_prob=0.2, id_dropout=0.2)
        args = make_args(output_dir, **overrides)
        trainer = make_trainer(model, args, train, valid, callbacks=list(callbacks), weight_averaging_epochs=epochs)
        trainer.train(resume_from_checkpoint=resume)
        return trainer

    full = run(tmp_path / "full")
    run(tmp_path / "killed", callbacks=[KillAt(7)])
    resumed = run(tmp_path / "killed", resume=str(tmp_path / "killed" / "checkpoint-5"))
    assert_same_parameters(parameters(resumed.model), parameters(full.model), atol=1e-6)
    for name, tensor in full.weight_average.trained_weights().items():
        torch.testing.assert_close(resumed.weight_average.trained_weights()[name], tensor, rtol=0, atol=1e-6)

    (tmp_path / "killed" / "checkpoint-5" / TRAINING_WEIGHTS_NAME).unlink()
    with pytest.raises(ValueError, match=rf"checkpoint-5: it has no {TRAINING_WEIGHTS_NAME}"):
        run(tmp_path / "killed", resume=str(tmp_path / "killed" / "checkpoint-5"))


def test_weight_averaging_defaults_to_the_dense_model_and_is_refused_below_zero(tmp_path, pattern_data):
    _, _, _, counts = pattern_data
    dense = make_trainer(make_model(counts), make_args(tmp_path), weight_averaging_epochs=None)
    assert dense.weight_averaging_epochs == DEFAULT_WEIGHT_AVERAGING_EPOCHS and dense.weight_average is None  # yet
    other = make_trainer(torch.nn.Linear(1, 1), make_args(tmp_path), weight_averaging_epochs=None)
    assert other.weight_averaging_epochs == 0.0
    with pytest.raises(ValueError, match="weight_averaging_epochs must be >= 0"):
        make_trainer(make_model(counts), make_args(tmp_path), weight_averaging_epochs=-1)


# ----------------------------------------------------------------------------------------------------------------
# Metric plumbing with hand-checkable ranks
# ----------------------------------------------------------------------------------------------------------------
def fixed_scores(num_items: int) -> torch.Tensor:
    """Scores of a model that prefers lower catalog indices: item `j` scores `num_items + 1 - j`; padding -inf."""
    scores = torch.arange(num_items + 1, 0, -1, dtype=torch.float)
    scores[0] = float("-inf")
    return scores


@pytest.mark.parametrize(
    "exclude_history, expected_ranks",
    [
        # (history 1..6, target 7): items 1..6 outrank 7. (history 2, 12, 3, target 12): items 1..11 outrank 12.
        (False, [7.0, 12.0]),
        # History items leave the ranking: 7 comes first; 12 stays (a target is never removed) behind 1, 4..11.
        (True, [1.0, 10.0]),
    ],
)
def test_evaluate_reports_hand_checked_ranks_with_and_without_history_exclusion(
    tmp_path, pattern_data, exclude_history, expected_ranks
):
    _, _, _, counts = pattern_data
    model = make_model(counts, **NO_DROPOUT)
    base = fixed_scores(NUM_ITEMS)

    def score_histories(item_ids, attention_mask=None, catalog=None):
        return base.expand(len(item_ids), -1).clone(), torch.zeros(len(item_ids), dtype=torch.bool)

    model.score_histories = score_histories
    examples = Dataset.from_dict({"item_ids": [[1, 2, 3, 4, 5, 6], [2, 12, 3]], "target_id": [7, 12], "length": [6, 3]})
    trainer = make_trainer(model, make_args(tmp_path, per_device_eval_batch_size=1), exclude_history=exclude_history)
    metrics = trainer.evaluate(examples)

    ranks, _ = trainer.rank_targets(trainer.get_eval_dataloader(examples))
    assert ranks.tolist() == expected_ranks
    expected = {
        "hr@5": sum(r <= 5 for r in expected_ranks) / 2,
        "hr@10": sum(r <= 10 for r in expected_ranks) / 2,
        "hr@20": sum(r <= 20 for r in expected_ranks) / 2,
        "ndcg@10": sum(1 / math.log2(r + 1) for r in expected_ranks if r <= 10) / 2,
        "ndcg@20": sum(1 / math.log2(r + 1) for r in expected_ranks) / 2,
        "mrr": sum(1 / r for r in expected_ranks) / 2,
    }
    for name, value in expected.items():
        assert metrics[f"eval_{name}"] == pytest.approx(value), name
    assert {f"eval_{k}" for k in ("hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr", "loss")} <= set(
        metrics
    )
    # The loss is the InfoNCE of the unmasked scores, whatever the ranking protocol.
    log_partition = torch.logsumexp(base[1:], dim=0).item()
    expected_loss = sum(log_partition - base[t].item() for t in (7, 12)) / 2
    assert metrics["eval_loss"] == pytest.approx(expected_loss, rel=1e-6)


def test_evaluation_keeps_dataset_order_under_length_grouped_training(tmp_path):
    """Ranks are matched to their examples by position (the report's warm/cold split): a length-grouped training
    sampler must not reorder the evaluation examples."""
    args = TrainingArguments(
        output_dir=str(tmp_path), train_sampling_strategy="group_by_length", per_device_eval_batch_size=4,
        report_to="none", use_cpu=True,
    )  # fmt: skip
    trainer = GenRecTrainer(model=torch.nn.Linear(1, 1), args=args)
    examples = Dataset.from_dict({"item_ids": [[1] * n for n in (5, 1, 9, 2, 7, 3)], "length": [5, 1, 9, 2, 7, 3]})
    assert list(trainer._get_eval_sampler(examples)) == list(range(6))

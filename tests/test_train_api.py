"""`genrec_hf.training.train` from Python: the same model and `EvaluationReport` as `scripts/train.py` for the same
arguments and seed, `ModelArguments` defaults that are `GenRecConfig`'s, and the Trainer conventions: pushes
(`push_to_hub`, `hub_strategy`) through `publish` with the remote code in every commit, test metrics in the
`report_to` trackers and in `save_metrics`' files.

The pushes are recorded by `test_hub.HubRecorder` (huggingface_hub's `create_repo` / `upload_folder` replaced by
recorders that keep a copy of each uploaded folder): the local Hub stand-in answers downloads only, and faking the
commit API (preupload, LFS/xet negotiation) would test an imitation of the protocol rather than our code.
"""

import json
from pathlib import Path

import pytest
import torch
from test_distributed import tiny_data  # noqa: F401  (the fixture: 150 synthetic users, 60 items, prepared)
from test_hub import HubRecorder

from genrec_hf import GenRecConfig, GenRecModel
from genrec_hf.commands.train import main as train_main
from genrec_hf.evaluation import EvaluationReport
from genrec_hf.modeling_genrec import WHITENING_EPSILON
from genrec_hf.training import EvaluationArguments, ModelArguments, TrainingResult, train


def comparable(report: dict) -> dict:
    """The report without what differs between two runs of the same training: wall time and the run folder."""
    training = dict(report["training"])
    del training["train_runtime_s"]
    training["best_checkpoint"] = Path(training["best_checkpoint"]).name
    return {**report, "training": training}


def test_train_from_python_reports_the_same_numbers_as_the_script(tiny_data, tmp_path):  # noqa: F811
    argv = [
        "--data_dir", str(tiny_data), "--output_dir", str(tmp_path / "cli"), "--item_encoder", "none",
        "--fusion", "id", "--hidden_size", "16", "--max_seq_len", "10", "--num_train_epochs", "2",
        "--per_device_train_batch_size", "32", "--bootstrap_samples", "50", "--exclude_history",
        "--use_cpu", "--dataloader_pin_memory", "false", "--disable_tqdm", "true", "--report_to", "none",
    ]  # fmt: skip
    written = train_main(argv)

    result = train(
        tiny_data,
        tmp_path / "python",
        model=ModelArguments(item_encoder="none", fusion="id", hidden_size=16, max_seq_len=10),
        evaluation=EvaluationArguments(exclude_history=True, bootstrap_samples=50),
        training_args={
            "num_train_epochs": 2, "per_device_train_batch_size": 32, "use_cpu": True,
            "dataloader_pin_memory": False, "disable_tqdm": True, "report_to": "none",
        },
    )  # fmt: skip

    assert isinstance(result, TrainingResult) and isinstance(result.model, GenRecModel)
    assert result.processor.num_items == result.model.config.num_items
    assert result.report.protocol.exclude_history is True
    assert result.report.training.global_step == written["training"]["global_step"] > 0
    assert comparable(result.report.to_dict()) == comparable(written)
    assert EvaluationReport.load(tmp_path / "cli").to_dict() == written
    cli_model = GenRecModel.from_pretrained(tmp_path / "cli")
    for name, tensor in cli_model.state_dict().items():
        torch.testing.assert_close(result.model.state_dict()[name], tensor, rtol=0, atol=0, msg=name)

    features = tmp_path / "python" / "item_features.safetensors"  # written at the first checkpoint
    at_checkpoint = features.stat()
    saved = result.save()
    assert saved == tmp_path / "python"
    assert (features.stat().st_ino, features.stat().st_mtime_ns) == (at_checkpoint.st_ino, at_checkpoint.st_mtime_ns)
    assert list(saved.glob("checkpoint-*")) and not list(saved.glob("checkpoint-*/item_features.safetensors"))
    # The measured default: the dense model is a weight average, each checkpoint keeping its trained weights too.
    assert written["training"]["hyperparameters"]["weight_averaging_epochs"] == 3.0
    assert all((c / "training_weights.safetensors").is_file() for c in saved.glob("checkpoint-*"))
    assert json.loads((saved / "metrics.json").read_text()) == result.report.to_dict()
    assert (saved / "model.safetensors").is_file() and (saved / "processor_config.json").is_file()
    history = json.loads((saved / "trainer_state.json").read_text())["log_history"]
    assert [entry["epoch"] for entry in history if "eval_ndcg@10" in entry] == [1.0, 2.0]  # every epoch, not the best


def test_early_stopping_ends_the_run_after_patience_evaluations_without_improvement(tiny_data, tmp_path):  # noqa: F811
    # learning rate 0: every evaluation repeats the first one's NDCG@10, so none improves on it
    result = train(
        tiny_data,
        tmp_path,
        model=ModelArguments(item_encoder="none", fusion="id", hidden_size=16, max_seq_len=10),
        evaluation=EvaluationArguments(bootstrap_samples=20, early_stopping_patience=2),
        training_args={
            "num_train_epochs": 6, "learning_rate": 0.0, "per_device_train_batch_size": 32, "use_cpu": True,
            "dataloader_pin_memory": False, "disable_tqdm": True, "report_to": "none",
        },
    )  # fmt: skip

    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    assert [entry["epoch"] for entry in history if "eval_ndcg@10" in entry] == [1.0, 2.0, 3.0]
    assert result.report.training.hyperparameters["early_stopping_patience"] == 2
    assert Path(result.report.training.best_checkpoint).name == f"checkpoint-{result.report.training.global_step // 3}"


def test_item_text_max_length_reaches_the_saved_processor(tiny_data, tiny_bert_path, tmp_path):  # noqa: F811
    argv = [
        "--data_dir", str(tiny_data), "--output_dir", str(tmp_path), "--item_encoder", str(tiny_bert_path),
        "--item_text_max_length", "16", "--hidden_size", "16", "--max_seq_len", "10", "--num_train_epochs", "1",
        "--bootstrap_samples", "10", "--use_cpu", "--disable_tqdm", "true", "--report_to", "none",
    ]  # fmt: skip
    train_main(argv)
    assert json.loads((tmp_path / "processor_config.json").read_text())["text_max_length"] == 16


def test_training_whitens_content_features_on_the_catalog_and_says_so(tiny_data, tiny_bert_path, tmp_path):  # noqa: F811
    result = train(
        tiny_data,
        tmp_path,
        model=ModelArguments(item_encoder=str(tiny_bert_path), hidden_size=16, max_seq_len=10),
        evaluation={"bootstrap_samples": 10},
        training_args={"num_train_epochs": 1, "use_cpu": True, "disable_tqdm": True, "report_to": "none"},
    )
    whitening, catalog = result.model.item_tower.text_whitening, result.model.item_text_features[1:].float()
    torch.testing.assert_close(whitening.mean, catalog.mean(dim=0))
    centred = (catalog - catalog.mean(dim=0)).double()
    whitened = centred @ whitening.transform.double()
    # along each principal axis, variance lambda scaled to lambda / (lambda + epsilon * mean variance): near 1 on the
    # axes the catalog spans most, less on those it barely spans
    variances = torch.linalg.eigvalsh(centred.T @ centred / len(centred)).clamp(min=0)
    expected = variances / (variances + WHITENING_EPSILON * variances.mean())
    torch.testing.assert_close(whitened.var(dim=0, unbiased=False).sort().values, expected, atol=1e-5, rtol=1e-4)
    saved = result.save()
    summary = json.loads((saved / "metrics.json").read_text())["model"]
    assert summary["content_whitened"] is True and summary["content_whitening_epsilon"] == WHITENING_EPSILON


def test_train_refuses_settings_that_break_the_run(tiny_data, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="remove_unused_columns"):
        train(tiny_data, tmp_path, training_args={"remove_unused_columns": True})
    with pytest.raises(ValueError, match="output_dir"):
        train(tiny_data)


def test_model_arguments_default_to_the_config_defaults():
    config = GenRecConfig()
    arguments = ModelArguments()
    assert arguments.item_encoder == config.item_encoder_name_or_path
    kwargs = arguments.config_kwargs()
    assert {"hidden_dropout_prob", "attention_dropout_prob", "fusion", "loss_negatives"} <= set(kwargs)
    assert "item_encoder_type" not in kwargs
    # values the config derives (intermediate_size = 4 x hidden_size) stay derived, so they follow --hidden_size
    assert GenRecConfig(**kwargs).to_dict() == config.to_dict()
    assert GenRecConfig(**{**kwargs, "hidden_size": 32}).intermediate_size == 128


REMOTE_CODE = {"configuration_genrec.py", "modeling_genrec.py", "processing_genrec.py", "pipeline_genrec.py"}


def assert_publishable(folder: Path) -> None:
    """A folder as `publish` uploads it: remote code, `auto_map`, `custom_pipelines`, processor and card."""
    names = {p.name for p in folder.iterdir()}
    assert REMOTE_CODE | {"config.json", "model.safetensors", "processor_config.json", "README.md"} <= names, names
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModel"] == "modeling_genrec.GenRecModel" and "custom_pipelines" in config


@pytest.mark.parametrize("strategy", ["every_save", "checkpoint"])
def test_push_to_hub_from_python_publishes_every_push_with_its_remote_code(
    tiny_data,  # noqa: F811
    tmp_path,
    monkeypatch,
    strategy,
):
    hub = HubRecorder(monkeypatch, tmp_path / "hub")
    (tmp_path / "hub").mkdir()
    result = train(
        tiny_data,
        tmp_path / "run",
        model=ModelArguments(item_encoder="none", fusion="id", hidden_size=16, max_seq_len=10),
        evaluation={"bootstrap_samples": 20},
        training_args={
            "max_steps": 2, "save_strategy": "steps", "save_steps": 1, "eval_strategy": "no",
            "load_best_model_at_end": False, "use_cpu": True, "dataloader_pin_memory": False, "disable_tqdm": True,
            "push_to_hub": True, "hub_model_id": "me/genrec-run", "hub_strategy": strategy, "hub_token": "hf_SeCrEt",
        },
    )  # fmt: skip
    uploads = list(zip([kw for name, kw in hub.calls if name == "upload_folder"], hub.uploads))
    published = [(kw, folder) for kw, folder in uploads if "path_in_repo" not in kw]
    raw = [kw for kw, _ in uploads if "path_in_repo" in kw]  # the checkpoint folder itself, to resume from
    assert [kw["commit_message"] for kw, _ in published] == [
        "Training in progress, step 1",
        "Training in progress, step 2",
    ]
    assert [kw["path_in_repo"] for kw in raw] == (["last-checkpoint"] * 2 if strategy == "checkpoint" else [])
    for _, folder in published:
        assert_publishable(folder)

    result.save()  # the end-of-training push, with the run's metrics
    final = hub.uploads[-1]
    assert hub.calls[-1][1]["commit_message"] == "End of training" and hub.calls[-1][1]["repo_id"] == "me/genrec-run"
    assert_publishable(final)
    assert json.loads((final / "metrics.json").read_text())["test"] == result.report.to_dict()["test"]
    assert not [p for p in (tmp_path / "run").rglob("*") if p.is_file() and b"hf_SeCrEt" in p.read_bytes()]


def test_test_metrics_reach_the_trackers_and_save_metrics(tiny_data, tmp_path):  # noqa: F811
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    result = train(
        tiny_data,
        tmp_path,
        model=ModelArguments(item_encoder="none", fusion="id", hidden_size=16, max_seq_len=10),
        evaluation={"bootstrap_samples": 20},
        training_args={
            "max_steps": 2, "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False,
            "use_cpu": True, "dataloader_pin_memory": False, "disable_tqdm": True, "report_to": "tensorboard",
        },
    )  # fmt: skip
    expected = {f"test_{name}": estimate.value for name, estimate in result.report.test.items()}
    assert json.loads((tmp_path / "test_results.json").read_text()) == expected
    assert json.loads((tmp_path / "all_results.json").read_text()).items() >= expected.items()
    logged = {}
    for events in tmp_path.rglob("events.out.tfevents.*"):
        accumulator = event_accumulator.EventAccumulator(str(events.parent))
        accumulator.Reload()
        logged.update({tag: accumulator.Scalars(tag)[-1].value for tag in accumulator.Tags()["scalars"]})
    assert {tag: logged.get(tag.replace("test_", "test/", 1)) for tag in expected} == pytest.approx(expected)

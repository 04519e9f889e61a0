"""`genrec_hf.training.train` from Python: the same model and `EvaluationReport` as `scripts/train.py` for the same
arguments and seed, and `ModelArguments` defaults that are `GenRecConfig`'s."""

import json
from pathlib import Path

import pytest
import torch
from test_distributed import tiny_data  # noqa: F401  (the fixture: 150 synthetic users, 60 items, prepared)

from genrec_hf import GenRecConfig, GenRecModel
from genrec_hf.commands.train import main as train_main
from genrec_hf.evaluation import EvaluationReport
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

    saved = result.save()
    assert saved == tmp_path / "python"
    assert json.loads((saved / "metrics.json").read_text()) == result.report.to_dict()
    assert (saved / "model.safetensors").is_file() and (saved / "processor_config.json").is_file()


def test_train_refuses_settings_that_break_the_run(tiny_data, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="remove_unused_columns"):
        train(tiny_data, tmp_path, training_args={"remove_unused_columns": True})
    with pytest.raises(ValueError, match="publish"):
        train(tiny_data, tmp_path, training_args={"push_to_hub": True})
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

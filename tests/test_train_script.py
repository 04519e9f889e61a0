"""scripts/train.py end to end: the embedded synthetic sample, a tiny local text encoder, everything it writes, the
item-feature cache, and `accelerate launch` (marked slow: `pytest -m slow`)."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModel

import genrec_hf  # noqa: F401  (registers the genrec Auto classes)
from genrec_hf import GenRecModel, GenRecProcessor, ItemEncoder
from genrec_hf.commands.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
METRIC_NAMES = {"hr@5", "ndcg@5", "hr@10", "ndcg@10", "hr@20", "ndcg@20", "mrr"}


def synthetic_argv(output_dir: Path, encoder: Path, *extra: str) -> list[str]:
    return [
        "--synthetic", "--item_encoder", str(encoder), "--output_dir", str(output_dir),
        "--num_train_epochs", "2", "--per_device_train_batch_size", "128", "--hidden_size", "16",
        "--max_seq_len", "10", "--bootstrap_samples", "200", "--logging_steps", "2", "--report_to", "none",
        "--use_cpu", "--dataloader_pin_memory", "false", "--disable_tqdm", "true", *extra,
    ]  # fmt: skip


def assert_metrics_with_ci(group: dict) -> None:
    assert METRIC_NAMES <= set(group), group.keys()
    for name in METRIC_NAMES:
        value = group[name]
        assert value["ci_low"] <= value["value"] <= value["ci_high"], (name, value)
        assert 0.0 <= value["ci_low"] and value["ci_high"] <= 1.0


def test_train_script_on_the_synthetic_sample_writes_everything_and_reuses_cached_features(
    tmp_path, tiny_bert_path, monkeypatch, caplog
):
    out = tmp_path / "run"
    metrics = train_main(synthetic_argv(out, tiny_bert_path))

    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json", "metrics.json"} <= names
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads((out / "metrics.json").read_text())
    assert written == json.loads(json.dumps(metrics))
    assert {"valid", "test", "test_warm", "test_cold", "popularity", "protocol", "model", "data"} <= set(written)
    assert METRIC_NAMES <= set(written["valid"])
    assert_metrics_with_ci(written["test"])
    assert_metrics_with_ci(written["popularity"]["test"])
    assert METRIC_NAMES <= set(written["popularity"]["valid"])
    assert written["test_warm"]["count"] + written["test_cold"]["count"] == written["data"]["stats"]["rows"]["test"]
    if written["test_warm"]["count"]:
        assert_metrics_with_ci(written["test_warm"])
    assert written["model"]["item_encoder_type"] == "text"
    assert written["data"]["stats"]["synthetic"] is True

    # The saved model is the best checkpoint by valid NDCG@10, and the report's valid metrics are that model's.
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    state = json.loads((checkpoints[-1] / "trainer_state.json").read_text())
    assert written["training"]["best_checkpoint"] == state["best_model_checkpoint"]
    assert written["valid"]["ndcg@10"] == pytest.approx(state["best_metric"], abs=1e-9)
    assert any("loss" in row for row in state["log_history"])

    model = AutoModel.from_pretrained(out)
    assert type(model) is GenRecModel
    assert model.config.item_encoder_type == "text" and model.config.text_feature_dim == 16
    assert model.config.image_feature_dim == 0
    processor = GenRecProcessor.from_pretrained(out)
    assert processor.num_items == model.config.num_items == written["data"]["stats"]["items"]
    # real encoder output, unit norm (to the float16 precision of the features file)
    assert model.item_text_features[1:].float().norm(dim=-1).sub(1).abs().max() < 1e-3

    # A second run of the same command reads the item features from the cache: the encoder never runs.
    def no_encoding(*args, **kwargs):
        raise AssertionError("the item encoder ran although its features were cached")

    monkeypatch.setattr(ItemEncoder, "encode", no_encoding)
    with caplog.at_level(logging.INFO, logger="genrec_hf"):
        again = train_main(synthetic_argv(out, tiny_bert_path, "--max_steps", "1"))
    assert "item features read from cache" in caplog.text
    assert again["training"]["global_step"] == 1


@pytest.mark.slow
def test_accelerate_launch_runs_the_script_in_one_process(tmp_path):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf_home"),  # no accelerate config file: the plain single-process launch
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", str(REPO / "scripts" / "train.py"),
        "--synthetic", "--item_encoder", "none", "--fusion", "id", "--output_dir", str(out),
        "--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
        "--hidden_size", "16", "--bootstrap_samples", "20", "--report_to", "none", "--disable_tqdm", "true",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["global_step"] == 2
    assert metrics["model"]["fusion"] == "id"
    assert "Test metrics" in result.stdout
    assert (out / "model.safetensors").exists()


def test_report_to_tensorboard_logs_training_loss_and_valid_metrics(tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    out = tmp_path / "run"
    argv = [
        "--synthetic", "--item_encoder", "none", "--fusion", "id", "--output_dir", str(out), "--num_train_epochs", "1",
        "--hidden_size", "16", "--max_seq_len", "10", "--bootstrap_samples", "20", "--logging_steps", "1",
        "--report_to", "tensorboard", "--use_cpu", "--dataloader_pin_memory", "false", "--disable_tqdm", "true",
    ]  # fmt: skip
    train_main(argv)
    # one run folder; the test metrics, logged after training closed its writer, are in a second events file there
    (run,) = {path.parent for path in out.glob("runs/*/events.out.tfevents.*")}
    events = event_accumulator.EventAccumulator(str(run))
    events.Reload()
    assert {"train/loss", "eval/ndcg@10", "test/ndcg@10"} <= set(events.Tags()["scalars"])

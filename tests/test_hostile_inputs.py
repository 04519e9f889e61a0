"""Hostile inputs, faults and kills (issue 16): nothing a user gave is lost, nothing bad is let in as data.

Image fetching (finding 2) is tested beside its code in `test_data_images.py`, an empty k-core (finding 7) in
`test_data_processing.py`. The multi-process kills are marked `slow`.
"""

import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_data_validation import meta, review, write_gz
from transformers import TrainingArguments

from genrec_hf import ItemEncoder
from genrec_hf._atomic import STAGING_DIR, commit_staged, finish_staged, staging_folder
from genrec_hf.commands._inference import load_model_and_processor
from genrec_hf.commands.precompute import main as precompute_main
from genrec_hf.commands.prepare_data import main as prepare_data_main
from genrec_hf.commands.recommend import main as recommend_main
from genrec_hf.commands.recommend import parse_history_line
from genrec_hf.data import load_prepared, prepare_dataset
from genrec_hf.data.synthetic import write_synthetic_sample
from genrec_hf.evaluation import EvaluationReport
from genrec_hf.hub.folder import public_report
from genrec_hf.inference.catalog import CATALOG_FAISS, CATALOG_METADATA, CATALOG_WEIGHTS, ItemCatalog
from genrec_hf.inference.recommender import recommend_for_histories
from genrec_hf.item_content import load_image
from genrec_hf.training import DataArguments, ModelArguments, train
from genrec_hf.training.checkpoints import resolve_checkpoint
from genrec_hf.training.trainer import GenRecTrainer

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
ID_ONLY = ["--item_encoder", "none", "--fusion", "id", "--hidden_size", "16", "--max_seq_len", "10"]
QUIET = ["--use_cpu", "--dataloader_pin_memory", "false", "--disable_tqdm", "true", "--report_to", "none"]


def write_blank_png(path: Path, width: int, height: int, rgb: bool = True) -> Path:
    """A valid all-black PNG of any size in a few KB (rows of zeros compress ~1000:1), written row by row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (width * 3 if rgb else -(-width // 8)))  # filter byte + RGB 8-bit, or 1-bit grey
    compressor = zlib.compressobj(1)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8 if rgb else 1, 2 if rgb else 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def hostile_photos(tmp_path_factory) -> dict[str, Path]:
    """A good photo, a decompression bomb (20000x20000 px, PIL refuses it) and a 12000x12000 photo under PIL's limit
    (decoded, it takes over 1 GB)."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    Image.new("RGB", (40, 30), "orange").save(folder / "good.png")
    return {
        "good": folder / "good.png",
        "bomb": write_blank_png(folder / "bomb.png", 20000, 20000, rgb=False),
        "huge": write_blank_png(folder / "huge.png", 12000, 12000),
    }


def run_python(code: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=timeout)


def run_measured(code: str) -> tuple[subprocess.CompletedProcess, float]:
    """Runs `code` in a fresh Python (it must succeed); returns the result and the process's peak memory in MB.

    The peak is the child's own `VmHWM`: `ru_maxrss` would carry over the parent's (pytest's) peak across exec.
    """
    peak = "[line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]"
    completed = run_python(code + f"\nprint('MAXRSS_KB', {peak})")
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed, int(completed.stdout.split("MAXRSS_KB")[1].split()[0]) / 1024


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ----------------------------------------------------------------------------------------------------------------
# 1. Oversized photos are masked and reported, decoded within bounded memory
# ----------------------------------------------------------------------------------------------------------------
def test_oversized_photos_are_masked_and_reported_by_the_encoder(hostile_photos, tiny_clip_path, caplog):
    encoder = ItemEncoder.from_pretrained(str(tiny_clip_path))
    items = [{"parent_asin": name, "title": name, "image_path": str(path)} for name, path in hostile_photos.items()]
    processor = encoder.build_processor([item["parent_asin"] for item in items])
    with caplog.at_level("INFO", logger="genrec_hf"):
        features = encoder.encode(items, processor, show_progress=False)
    assert features.image_mask.tolist() == [True, False, False]
    assert "0 without an image, 2 whose image could not be read safely" in caplog.text
    assert f"{hostile_photos['bomb']} is unreadable (decompression bomb" in caplog.text
    assert f"{hostile_photos['huge']} is unreadable (12000x12000 pixels is over the limit" in caplog.text


def test_precompute_finishes_past_oversized_photos_in_bounded_memory(hostile_photos, trained_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(trained_model_dir, folder)
    table = tmp_path / "items.jsonl"
    table.write_text("".join(
        json.dumps({"parent_asin": f"N-{name}", "title": f"new {name}", "image_path": str(path)}) + "\n"
        for name, path in hostile_photos.items()
    ))  # fmt: skip
    completed, peak_mb = run_measured(
        f"from genrec_hf.commands.precompute import main\nassert main(['--model', {str(folder)!r}, '--items', "
        f"{str(table)!r}]) == 0"
    )
    assert "2 whose image could not be read safely" in completed.stderr
    assert peak_mb < 1024, f"precompute peaked at {peak_mb:.0f} MB"
    assert ItemCatalog.load(folder).parent_asins[-3:] == ["N-good", "N-bomb", "N-huge"]


def test_a_huge_photo_is_refused_from_its_header_not_decoded(hostile_photos):
    paths = [str(hostile_photos["bomb"]), str(hostile_photos["huge"])]
    module = ROOT / "genrec_hf" / "item_content.py"  # standard library and PIL only: measured without torch
    completed, peak_mb = run_measured(
        f"import importlib.util as u\nspec = u.spec_from_file_location('item_content', {str(module)!r})\n"
        f"m = u.module_from_spec(spec)\nspec.loader.exec_module(m)\nprint([m.load_image(p) for p in {paths!r}])"
    )
    assert completed.stdout.splitlines()[0] == "[None, None]"
    assert peak_mb < 1024, f"loading the photos peaked at {peak_mb:.0f} MB"
    assert load_image(str(hostile_photos["good"])).size == (40, 30)


def test_training_finishes_with_a_decompression_bomb_among_the_photos(hostile_photos, tiny_clip_path, tmp_path):
    reviews, metas, images = write_synthetic_sample(tmp_path / "raw", num_users=40, num_items=20)
    photos = sorted(images.glob("*.png"))
    shutil.copy(hostile_photos["bomb"], photos[0])
    shutil.copy(hostile_photos["huge"], photos[1])
    result = train(
        DataArguments(reviews=[str(reviews)], meta=[str(metas)], images_dir=str(images), kcore=0),
        tmp_path / "run",
        model=ModelArguments(item_encoder=str(tiny_clip_path), hidden_size=16, max_seq_len=10),
        training_args={"max_steps": 2, "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False,
                       "use_cpu": True, "report_to": "none", "disable_tqdm": True, "dataloader_pin_memory": False},
    )  # fmt: skip
    vocab = result.processor.item_vocab
    masked = [vocab[row] for row in range(1, len(vocab)) if not result.model.item_image_mask[row]]
    assert {photos[0].stem, photos[1].stem} <= set(masked)
    assert result.trainer.state.global_step == 2


# ----------------------------------------------------------------------------------------------------------------
# 3. A file of the wrong kind never passes as reviews or metadata
# ----------------------------------------------------------------------------------------------------------------
def toy_files(folder: Path) -> tuple[Path, Path]:
    reviews = write_gz(folder / "Toys.jsonl.gz", [review(u, i, n) for n, (u, i) in enumerate(
        [(u, i) for u in "uvw" for i in "ABC"])])  # fmt: skip
    return reviews, write_gz(folder / "meta_Toys.jsonl.gz", [meta(i, store="real store") for i in "ABC"])


def test_a_meta_glob_that_matches_the_review_file_is_an_error_naming_it(tmp_path):
    reviews, _ = toy_files(tmp_path)
    with pytest.raises(ValueError, match=r"Toys.jsonl.gz:1: this file holds reviews .* not metadata.*--meta"):
        prepare_dataset(reviews, str(tmp_path / "*.jsonl.gz"), kcore=0)


def test_swapped_reviews_and_meta_is_an_error_naming_the_file(tmp_path):
    reviews, metas = toy_files(tmp_path)
    with pytest.raises(ValueError, match=r"meta_Toys.jsonl.gz:1: this file holds metadata .* not reviews"):
        prepare_dataset(metas, reviews, kcore=0)


# ----------------------------------------------------------------------------------------------------------------
# 4. recommend never overwrites its input, and writes its output whole or not at all
# ----------------------------------------------------------------------------------------------------------------
def test_recommend_refuses_to_write_over_its_history_file(trained_model_dir, tmp_path, caplog):
    history = tmp_path / "histories.txt"
    history.write_text("A01 A02\nB01\n")
    assert recommend_main(["--model", str(trained_model_dir), "--history", str(history), "--output",
                           str(tmp_path / "." / "histories.txt")]) == 2  # fmt: skip
    assert history.read_text() == "A01 A02\nB01\n" and "is the --history file" in caplog.text


def test_a_failed_recommend_run_leaves_the_previous_output_whole(trained_model_dir, tmp_path, monkeypatch):
    history, output = tmp_path / "histories.txt", tmp_path / "out.jsonl"
    history.write_text("A01 A02\n" * 300)
    output.write_text("previous results\n")

    import genrec_hf.commands.recommend as command

    served, calls = command.recommend_for_histories, []

    def interrupted_after_one_block(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:  # the first block of 256 lines was written; then the run is interrupted
            raise KeyboardInterrupt
        return served(*args, **kwargs)

    monkeypatch.setattr(command, "recommend_for_histories", interrupted_after_one_block)
    with pytest.raises(KeyboardInterrupt):
        recommend_main(["--model", str(trained_model_dir), "--history", str(history), "--output", str(output)])
    assert output.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["histories.txt", "out.jsonl"]


# ----------------------------------------------------------------------------------------------------------------
# 5. prepare never deletes folders it did not write
# ----------------------------------------------------------------------------------------------------------------
def test_prepare_refuses_an_output_dir_with_someone_elses_splits_and_items(tmp_path):
    reviews, metas = toy_files(tmp_path)
    out = tmp_path / "out"
    for name in ("items", "splits"):
        (out / name).mkdir(parents=True)
        (out / name / "mine.txt").write_text("the user's own file")
    with pytest.raises(ValueError, match=r"already holds splits/ and items/ that prepare_data did not write"):
        prepare_dataset(reviews, metas, out, kcore=0)
    assert (
        (out / "items" / "mine.txt").read_text() == (out / "splits" / "mine.txt").read_text() == "the user's own file"
    )
    prepare_dataset(reviews, metas, tmp_path / "fresh", kcore=0)
    prepare_dataset(reviews, metas, tmp_path / "fresh", kcore=2)  # its own folders: replaced without a word


# ----------------------------------------------------------------------------------------------------------------
# 6. Every field is range-checked against the 2023 schema
# ----------------------------------------------------------------------------------------------------------------
def test_out_of_range_timestamps_and_ratings_are_rejected_per_line(tmp_path):
    good = [review(u, i, n + 1) for n, (u, i) in enumerate([(u, i) for u in "uv" for i in "ABC"])]
    bad = [
        review("u", "D", 10**30),
        review("u", "E", -5),
        review("v", "D", 1, rating=float("nan")),  # written as NaN, which Python's json reads
        review("v", "E", 1).replace('"rating": 5.0', '"rating": 1e400'),  # read as inf
        review("v", "F", 1, rating=7.0),
    ]
    path = write_gz(tmp_path / "Toys.jsonl.gz", good + bad)
    metas = write_gz(tmp_path / "meta_Toys.jsonl.gz", [meta(i) for i in "ABCDEF"])
    data = prepare_dataset(path, metas, kcore=0)
    assert data.stats["interactions"] == 6 and data.stats["dropped"]["invalid_review_out_of_range"] == 5
    examples = data.report.files[str(path)].examples
    assert [(e["line"], e["field"]) for e in examples] == [(7, "timestamp"), (8, "timestamp"), (9, "rating"),
                                                           (10, "rating"), (11, "rating")]  # fmt: skip
    with pytest.raises(ValueError, match=r"Toys.jsonl.gz:7: out_of_range \(timestamp\)"):
        prepare_dataset(path, metas, kcore=0, strict=True)


def test_out_of_range_csv_values_are_rejected_per_line(tmp_path):
    rows = ["user_id,parent_asin,rating,timestamp", "u,A,5.0,1", "u,B,nan,2", "u,C,4.0,1" + "0" * 30, "u,D,4,3"]
    path = write_gz(tmp_path / "Toys.rating_only.csv.gz", rows)  # gzipped: plain files are issue 14's
    data = prepare_dataset(path, None, kcore=0)
    assert data.stats["interactions"] == 2
    assert [(e["line"], e["field"]) for e in data.report.files[str(path)].examples] == [(3, "rating"), (4, "timestamp")]


# ----------------------------------------------------------------------------------------------------------------
# 7. Useless input is an error that says why
# ----------------------------------------------------------------------------------------------------------------
def test_an_empty_review_file_is_an_error(tmp_path):
    empty = write_gz(tmp_path / "Toys.jsonl.gz", [])
    with pytest.raises(ValueError, match=r"no valid review in .*Toys.jsonl.gz: nothing to prepare"):
        prepare_dataset(empty, None, tmp_path / "out")
    with pytest.raises(SystemExit, match=r"error: no valid review in"):  # a message, no traceback
        prepare_data_main(["--reviews", str(empty), "--output_dir", str(tmp_path / "out")])


# ----------------------------------------------------------------------------------------------------------------
# 8. Damaged files: named, rebuilt when they are caches, never half-written by us
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture
def served_model(trained_model_dir, tmp_path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(trained_model_dir, folder)
    assert precompute_main(["--model", str(folder), "--items", str(folder / "items.jsonl"), "--faiss_index",
                            "flat"]) == 0  # fmt: skip
    return folder


def test_truncated_model_weights_exit_2_with_the_file_named(served_model, tmp_path, caplog):
    truncate(served_model / "model.safetensors")
    history = tmp_path / "h.txt"
    history.write_text("A01\n")
    argv = ["--model", str(served_model), "--history", str(history), "--output", str(tmp_path / "o.jsonl")]
    assert recommend_main(argv) == 2
    assert f"the weights in {served_model} are damaged" in caplog.text


@pytest.mark.parametrize("name", [CATALOG_WEIGHTS, CATALOG_FAISS, CATALOG_METADATA])
def test_a_damaged_catalog_is_named_and_computed_again(served_model, tmp_path, caplog, name):
    truncate(served_model / name)
    history, output = tmp_path / "h.txt", tmp_path / "o.jsonl"
    history.write_text("A01 A02\n")
    argv = ["--model", str(served_model), "--history", str(history), "--output", str(output), "--k", "3"]
    assert recommend_main(argv) == 0
    assert f"{served_model / name} is damaged" in caplog.text and "computing the catalog from the model" in caplog.text
    assert len(json.loads(output.read_text())["recommendations"]) == 3


def test_a_staged_save_is_finished_or_discarded_never_half_applied(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("old config")
    (folder / "model.safetensors").write_text("old weights")
    staging = staging_folder(folder)
    (staging / "config.json").write_text("new config")
    assert not finish_staged(folder)  # never marked complete (a kill while staging): discarded
    assert (folder / "config.json").read_text() == "old config" and not (folder / STAGING_DIR).exists()

    staging = staging_folder(folder)
    (staging / "config.json").write_text("new config")
    (staging / "model.safetensors").write_text("new weights")
    commit_staged(folder)
    assert [(folder / n).read_text() for n in ("config.json", "model.safetensors")] == ["new config", "new weights"]


def test_precompute_interrupted_while_writing_the_model_leaves_a_loadable_folder(trained_model_dir, tmp_path,
                                                                                monkeypatch):  # fmt: skip
    import transformers.modeling_utils

    folder, table = tmp_path / "model", tmp_path / "items.jsonl"
    shutil.copytree(trained_model_dir, folder)
    table.write_text("".join(json.dumps({"parent_asin": f"N{i}", "title": f"new {i}"}) + "\n" for i in range(5)))
    write_weights = transformers.modeling_utils.safe_save_file

    def killed_half_way(tensors, filename, metadata=None):  # the process dies with half the weights on disk
        write_weights(tensors, filename, metadata=metadata)
        truncate(Path(filename))
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(transformers.modeling_utils, "safe_save_file", killed_half_way)
        with pytest.raises(KeyboardInterrupt):
            precompute_main(["--model", str(folder), "--items", str(table)])
    model, processor = load_model_and_processor(str(folder))  # the old model, whole
    assert model.config.num_items == processor.num_items == 24
    assert precompute_main(["--model", str(folder), "--items", str(table)]) == 0  # the rerun finishes
    assert load_model_and_processor(str(folder))[0].config.num_items == 29


def test_resuming_from_a_truncated_checkpoint_names_the_file_and_true_skips_it(tmp_path):
    for step in (5, 10):
        checkpoint = tmp_path / f"checkpoint-{step}"
        checkpoint.mkdir()
        (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        torch.save({"state": torch.zeros(50)}, checkpoint / "optimizer.pt")
        from safetensors.torch import save_file

        save_file({"w": torch.zeros(100, 10)}, checkpoint / "model.safetensors")
    truncate(tmp_path / "checkpoint-10" / "model.safetensors")
    with pytest.raises(ValueError, match=r"cannot resume from .*checkpoint-10: .*model.safetensors is damaged"):
        resolve_checkpoint(str(tmp_path / "checkpoint-10"), tmp_path)
    assert resolve_checkpoint(True, tmp_path) == str(tmp_path / "checkpoint-5")
    truncate(tmp_path / "checkpoint-5" / "optimizer.pt")
    with pytest.raises(ValueError, match=r"optimizer.pt is damaged"):
        resolve_checkpoint(str(tmp_path / "checkpoint-5"), tmp_path)
    save_file({"w": torch.zeros(100, 10)}, tmp_path / "checkpoint-10" / "model.safetensors")
    save_file({"w": torch.zeros(100, 10)}, tmp_path / "checkpoint-10" / "training_weights.safetensors")
    truncate(tmp_path / "checkpoint-10" / "training_weights.safetensors")  # a weight-averaged run's trained weights
    with pytest.raises(ValueError, match=r"checkpoint-10: .*training_weights.safetensors is damaged"):
        resolve_checkpoint(str(tmp_path / "checkpoint-10"), tmp_path)


# ----------------------------------------------------------------------------------------------------------------
# 9. Resume draws the same batches as the uninterrupted run
# ----------------------------------------------------------------------------------------------------------------
def test_length_grouped_batches_depend_on_seed_and_epoch_only():
    from datasets import Dataset

    data = Dataset.from_dict({"item_ids": [[1] * (n % 7 + 2) for n in range(64)], "length": [n % 7 + 2 for n in
                                                                                         range(64)]})  # fmt: skip
    args = TrainingArguments("unused", train_sampling_strategy="group_by_length", per_device_train_batch_size=4,
                             use_cpu=True, report_to="none", seed=3)  # fmt: skip
    trainer = GenRecTrainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=data)
    orders = []
    for rng_seed in (0, 1):  # the global RNG differs, as in a resumed process before its state is restored
        sampler = trainer._get_train_sampler()
        sampler.set_epoch(2)
        torch.manual_seed(rng_seed)
        orders.append(list(sampler))
    assert orders[0] == orders[1]
    sampler.set_epoch(3)
    assert list(sampler) != orders[0]  # a new epoch, a new order


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(folder / "model.safetensors").items() if v.is_floating_point()}


def wait_for(predicate, process: subprocess.Popen, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, "the process ended before the point to kill it"
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.mark.slow
def test_kill_9_during_training_then_resume_equals_the_uninterrupted_run(tmp_path):
    reviews, metas, _ = write_synthetic_sample(tmp_path / "raw", num_users=300, num_items=60)
    prepare_dataset([str(reviews)], [str(metas)], output_dir=tmp_path / "data")
    # 300 users / 16 = 19 steps per epoch: checkpoints every 7 steps fall inside epochs, and length-grouped batches
    # (whose order the stock sampler drew from the unrestored global RNG) cross several epochs after the kill.
    argv = [sys.executable, str(ROOT / "scripts" / "train.py"), "--data_dir", str(tmp_path / "data"), *ID_ONLY,
            "--num_train_epochs", "3", "--per_device_train_batch_size", "16", "--save_strategy", "steps",
            "--save_steps", "7", "--eval_strategy", "steps", "--eval_steps", "7", "--save_total_limit", "10",
            "--train_sampling_strategy", "group_by_length", "--bootstrap_samples", "20", "--logging_steps", "1",
            *QUIET]  # fmt: skip
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run([*argv, "--output_dir", str(full)], env=ENV, check=True, capture_output=True, timeout=600)

    kill_after = random.Random().choice([21, 28, 35])  # a checkpoint from the second epoch on
    process = subprocess.Popen([*argv, "--output_dir", str(killed)], env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    wait_for(lambda: (killed / f"checkpoint-{kill_after}" / "trainer_state.json").exists(), process)
    # somewhere in the steps after it: an idle machine runs this tiny model's last 22 steps, evaluations and saves in
    # under 0.5 s, so a longer wait can let the run finish before the kill
    time.sleep(random.uniform(0, 0.05))
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "model.safetensors").exists()

    resumed = subprocess.run([*argv, "--output_dir", str(killed), "--resume_from_checkpoint",
                              str(killed / f"checkpoint-{kill_after}")], env=ENV, capture_output=True, text=True,
                             timeout=600)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    expected, got = read_weights(full), read_weights(killed)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=0, atol=1e-6, msg=name)
    full_metrics = EvaluationReport.load(full).to_dict()
    killed_metrics = EvaluationReport.load(killed).to_dict()
    assert killed_metrics["test"] == full_metrics["test"] and killed_metrics["valid"] == full_metrics["valid"]


@pytest.mark.slow
def test_kill_9_during_precompute_never_leaves_a_loadable_half_file(trained_model_dir, tmp_path):
    new = [{"parent_asin": f"N{i:03d}", "title": f"new gadget {i}", "store": "new store"} for i in range(300)]
    table = tmp_path / "items.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in new))
    reference, folder = tmp_path / "reference", tmp_path / "model"
    shutil.copytree(trained_model_dir, reference)
    shutil.copytree(trained_model_dir, folder)
    argv = ["--items", str(table), "--chunk_size", "20", "--batch_size", "4", "--faiss_index", "flat"]
    assert precompute_main(["--model", str(reference), *argv]) == 0

    script = [sys.executable, str(ROOT / "scripts" / "precompute_embeddings.py"), "--model", str(folder), *argv]
    for delay in (random.uniform(0.3, 3.0), random.uniform(0.3, 3.0)):  # a random moment of a run, then of its rerun
        process = subprocess.Popen(script, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: (folder / ".item_catalog_work").exists(), process)
        time.sleep(delay)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        # Whatever the moment, the folder loads: the old model or the new one, each whole and matching its files.
        completed = run_python(
            "from genrec_hf.commands._inference import load_model_and_processor\n"
            f"model, processor = load_model_and_processor({str(folder)!r})\nprint(model.config.num_items)"
        )
        assert completed.returncode == 0, completed.stderr[-2000:]
        assert int(completed.stdout.split()[-1]) in (24, 324)
    assert precompute_main(["--model", str(folder), *argv]) == 0  # rerun: resumes and finishes
    for name in ("model.safetensors", CATALOG_WEIGHTS):
        expected, got = load_file(reference / name), load_file(folder / name)
        assert expected.keys() == got.keys()
        for key in expected:
            torch.testing.assert_close(got[key], expected[key], msg=f"{name}:{key}")
    assert json.loads((folder / CATALOG_METADATA).read_text()) == json.loads((reference / CATALOG_METADATA).read_text())


@pytest.mark.slow
def test_kill_9_during_prepare_never_leaves_a_loadable_half_folder(tmp_path):
    reviews, metas, _ = write_synthetic_sample(tmp_path / "raw", num_users=20000, num_items=300)
    script = [sys.executable, str(ROOT / "scripts" / "prepare_data.py"), "--reviews", str(reviews), "--meta",
              str(metas)]  # fmt: skip
    subprocess.run([*script, "--output_dir", str(tmp_path / "reference")], env=ENV, check=True, capture_output=True)
    out = tmp_path / "out"
    process = subprocess.Popen([*script, "--output_dir", str(out)], env=ENV, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    wait_for(lambda: (out / "splits").exists(), process)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with pytest.raises(ValueError, match=r"not a complete prepared-data folder .*run prepare_data.py for it again"):
        load_prepared(out)
    subprocess.run([*script, "--output_dir", str(out)], env=ENV, check=True, capture_output=True)
    again, reference = load_prepared(out), load_prepared(tmp_path / "reference")
    assert again.stats["fingerprint"] == reference.stats["fingerprint"]
    assert {k: v for k, v in again.stats.items() if k != "validation"} == {
        k: v for k, v in reference.stats.items() if k != "validation"
    }
    for split in ("train", "valid", "test"):
        assert again.splits[split][:] == reference.splits[split][:]


# ----------------------------------------------------------------------------------------------------------------
# 10. Messages
# ----------------------------------------------------------------------------------------------------------------
def test_a_missing_model_folder_is_named(tmp_path, capsys):
    history = tmp_path / "h.txt"
    history.write_text("A01\n")
    missing = tmp_path / "no" / "such" / "model"
    with pytest.raises(SystemExit) as exit_info:
        recommend_main(["--model", str(missing), "--history", str(history)])
    message = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"--model {missing}: no such folder" in message and "Repo id" not in message


@pytest.mark.parametrize("user_id", ["NaN", "Infinity", "1e400"])
def test_a_non_finite_user_id_is_a_line_error_not_invalid_json(user_id):
    with pytest.raises(ValueError, match="'user_id' must be a string or a finite number"):
        parse_history_line(f'{{"user_id": {user_id}, "history": ["A01"]}}', 1)


def test_a_history_covering_the_catalog_says_why_it_gets_fewer_items(trained_model_dir):
    from transformers import AutoModel, AutoProcessor

    model, processor = AutoModel.from_pretrained(trained_model_dir), AutoProcessor.from_pretrained(trained_model_dir)
    everything = processor.item_vocab[1:]
    result = recommend_for_histories(model, processor, [everything[:-2], everything], k=5)
    assert len(result[0].parent_asins) == 2 and result[0].warnings[0].startswith("3 fewer items than asked for")
    assert result[1].parent_asins == [] and result[1].warnings[0].startswith("5 fewer items than asked for")


def test_published_metrics_hold_no_local_paths(tmp_path):
    report = {
        "valid": {}, "test": {}, "test_warm": {"count": 0}, "test_cold": {"count": 0},
        "popularity": {"valid": {}, "test": {}},
        "data": {"name": "Toys", "split": "leave_one_out", "stats": {
            "files_unreadable": ["/home/alice/data/Toys.jsonl.gz"],
            "validation": {"files": {"/home/alice/data/Toys.jsonl.gz": {"path": "/home/alice/data/Toys.jsonl.gz"}}},
        }},
        "training": {"epochs": 1, "global_step": 3, "train_runtime_s": 1.0, "seed": 0,
                     "best_checkpoint": "/home/alice/runs/toys/checkpoint-3"},
    }  # fmt: skip
    published = json.dumps(public_report(EvaluationReport.from_dict(report)).to_dict())
    assert "/home/alice" not in published
    assert (
        '"best_checkpoint": "checkpoint-3"' in published and '"Toys.jsonl.gz": {"path": "Toys.jsonl.gz"}' in published
    )


def test_the_hub_token_is_never_written_into_a_checkpoint(tmp_path):
    from genrec_hf.commands.train import main as train_main

    reviews, metas, _ = write_synthetic_sample(tmp_path / "raw", num_users=40, num_items=20)
    prepare_dataset([str(reviews)], [str(metas)], output_dir=tmp_path / "data", kcore=0)
    train_main(["--data_dir", str(tmp_path / "data"), "--output_dir", str(tmp_path / "run"), *ID_ONLY,
                "--max_steps", "2", "--save_steps", "1", "--save_strategy", "steps", "--eval_strategy", "no",
                "--load_best_model_at_end", "false", "--hub_token", "hf_SECRETsecretSECRET", "--bootstrap_samples",
                "5", *QUIET])  # fmt: skip
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.name == "training_args.bin" for p in written)
    assert not [p for p in written if b"hf_SECRETsecretSECRET" in p.read_bytes()]

#!/usr/bin/env python
"""Disk per Trainer checkpoint of a large-catalog model, against its trainable weights and optimizer state.

    python benchmarks/bench_checkpoint_size.py                        # 225k items, CLIP-sized 512 + 512 features
    PYTHONPATH=<older checkout> python benchmarks/bench_checkpoint_size.py   # the same with another genrec_hf

A GenRecModel of the default shape (gated fusion, hidden 64, 2 layers) over `--items` catalog items with random
`--text_dim` + `--image_dim` content features is trained `--steps` optimizer steps by `GenRecTrainer` on random
histories (sampled softmax, so a step is cheap), saving a checkpoint after every step, then saved with `save_model`
into the run folder and into a second folder. It prints, as JSON: the size of each checkpoint folder and of its files,
the trainable weights (float32) and the optimizer state they imply, the features file of the run (size, and how many
times it was written: its inode and modification time after every save), the seconds each checkpoint save took,
the size of the final folder, what loading it in a fresh process and recommending for 100 histories costs (seconds,
resident memory), and the peak RSS of the run. Only public API is used, so an older checkout of the package runs it
too (the "before" numbers of benchmarks/README.md).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import TrainerCallback, TrainingArguments

from genrec_hf import GenRecConfig, GenRecModel
from genrec_hf.training import GenRecTrainer, SequenceCollator

FEATURES = "item_features.safetensors"
MIB = 2**20


def folder_sizes(folder: Path) -> dict[str, float]:
    """MiB of every file in `folder`, and their total under `"total"`."""
    sizes = {p.name: p.stat().st_size / MIB for p in sorted(folder.iterdir()) if p.is_file()}
    return {**sizes, "total": sum(sizes.values())}


# Loads a saved model in a fresh process and recommends for 100 random histories: load seconds, resident memory.
LOAD = """
import json, sys, time
import torch
from genrec_hf import GenRecModel

def memory(field):  # MiB; VmHWM is this process's peak (ru_maxrss would include the parent's, fork inherits it)
    return int(open("/proc/self/status").read().split(field + ":")[1].split()[0]) // 1024

start = time.perf_counter()
model = GenRecModel.from_pretrained(sys.argv[1]).eval()
loaded = time.perf_counter() - start
after_load = memory("VmRSS")
with torch.no_grad():
    top = model.recommend(torch.randint(1, model.config.num_items + 1, (100, 20)), k=10)
print(json.dumps({"load_seconds": round(loaded, 2), "rss_after_load_mib": after_load,
                  "rss_after_recommend_mib": memory("VmRSS"), "peak_rss_mib": memory("VmHWM")}))
"""


def load_in_fresh_process(folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", LOAD, str(folder)], capture_output=True, text=True, env=os.environ, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


class SaveLog(TrainerCallback):
    """The seconds of every checkpoint save (from the end of its step) and the run's features file after it."""

    def __init__(self):
        self.saves = []
        self.step_end = None

    def on_step_end(self, args, state, control, **kwargs):
        self.step_end = time.perf_counter()

    def on_save(self, args, state, control, **kwargs):
        features = Path(args.output_dir) / FEATURES
        stat = features.stat() if features.exists() else None
        self.saves.append(
            {
                "step": state.global_step,
                "seconds": round(time.perf_counter() - self.step_end, 2),
                "features_file": [stat.st_ino, stat.st_mtime_ns] if stat else None,
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=225_000)
    parser.add_argument("--text_dim", type=int, default=512)
    parser.add_argument("--image_dim", type=int, default=512)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--users", type=int, default=256)
    parser.add_argument("--output_dir", type=Path, default=None)
    args = parser.parse_args()

    torch.manual_seed(0)
    config = GenRecConfig(
        num_items=args.items,
        text_feature_dim=args.text_dim,
        image_feature_dim=args.image_dim,
        loss_negatives="sampled",
        item_encoder_name_or_path=None,
    )
    model = GenRecModel(config)
    model.set_item_features(
        torch.nn.functional.normalize(torch.randn(args.items, args.text_dim), dim=-1),
        torch.nn.functional.normalize(torch.randn(args.items, args.image_dim), dim=-1),
        torch.ones(args.items, dtype=torch.bool),
    )
    model.set_item_popularity(torch.ones(args.items))
    histories = torch.randint(1, args.items + 1, (args.users, config.max_seq_len + 1)).tolist()
    train = Dataset.from_dict({"item_ids": histories, "length": [len(h) for h in histories]})

    output_dir = args.output_dir or Path(tempfile.mkdtemp(prefix="genrec_checkpoints_"))
    log = SaveLog()
    training_args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=args.steps,
        per_device_train_batch_size=64,
        save_strategy="steps",
        save_steps=1,
        eval_strategy="no",
        use_cpu=True,
        report_to="none",
        remove_unused_columns=False,
        dataloader_pin_memory=False,
        disable_tqdm=True,
    )
    trainer = GenRecTrainer(
        model=model, args=training_args, train_dataset=train, data_collator=SequenceCollator(), callbacks=[log]
    )
    trainer.train()
    start = time.perf_counter()
    trainer.save_model(str(output_dir))
    final_in_run_seconds = time.perf_counter() - start
    trainer.save_model(str(output_dir / "elsewhere"))

    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad) / MIB
    checkpoints = sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    features = output_dir / FEATURES
    result = {
        "items": args.items,
        "feature_dims": [args.text_dim, args.image_dim],
        "trainable_weights_mib": round(trainable, 1),
        "adamw_state_mib": round(2 * trainable, 1),  # exp_avg and exp_avg_sq, float32
        "checkpoints": {c.name: {k: round(v, 1) for k, v in folder_sizes(c).items()} for c in checkpoints},
        "checkpoint_saves": log.saves,
        "features_file_mib": round(features.stat().st_size / MIB, 1) if features.exists() else None,
        "features_file_written_once": len({str(s["features_file"]) for s in log.saves}) == 1
        and features.exists()
        and [features.stat().st_ino, features.stat().st_mtime_ns] == log.saves[0]["features_file"],
        "final_model_in_run_folder_seconds": round(final_in_run_seconds, 2),
        "final_folder_mib": round(folder_sizes(output_dir / "elsewhere")["total"], 1),
        "final_folder_load": load_in_fresh_process(output_dir / "elsewhere"),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "output_dir": str(output_dir),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

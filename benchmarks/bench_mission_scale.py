#!/usr/bin/env python
"""The whole pipeline at the mission's size (Amazon 2023 Handmade + Health: ~1.05 M users, ~225 k items, ~1.16 M
reviews), stage by stage: time, peak memory, disk, and how each grows with the size.

    python benchmarks/bench_mission_scale.py run --fractions 0.1 0.3 1.0     # one results file per fraction
    python benchmarks/bench_mission_scale.py run --fractions 0.01 --threads 1 # a 2-minute smoke run
    python benchmarks/bench_mission_scale.py table                          # tables + growth exponents

Raw 2023-schema files of both categories at `fraction` of their published size come from `mission_data.py`
(reused when already written: they depend only on fraction and seed). Then each stage runs in a fresh process
through the public pipeline, so that whatever the package does today is what is measured:

- `prepare_5core`: `prepare_dataset(..., kcore=5)` (what `scripts/prepare_data.py` runs; timed only, nothing
  downstream uses it);
- `prepare`: the same with `kcore=0`, so every item stays in the catalog;
- `encode`: the item texts through all-MiniLM-L6-v2 into the feature cache (`training.run.item_content`, as
  `train()` does), each text's first `--item_text_max_length` tokens (128, the length the encoder was trained on;
  the texts, like the published metadata, run to ~600 tokens, and the encoder's cost grows with the tokens read);
- `train_sampled`: `train()` of one epoch with `loss_negatives="sampled"` and gated fusion, then its evaluation
  report (valid and test, every user, the full catalog) and `result.save()`;
- `train_full`: the same epoch with `loss_negatives="full"` (`--full_softmax_steps` caps it and extrapolates the
  epoch), stopped before its evaluation;
- `catalog`: `scripts/precompute_embeddings.py --faiss_index <kind>` on the sampled model;
- `recommend`: `scripts/recommend.py` for 1,000 test users with a non-empty history, through the FAISS index;
- `image_cost`, not a pipeline stage: the marginal per-image cost of a ViT-B/32-sized CLIP (the real architecture
  from `CLIPConfig`, random weights) on real product photos; times the items, it estimates what image encoding adds.

Each stage's time is the pipeline call inside its process (imports excluded); its peak memory is the process's own
`VmHWM`, reset with `/proc/self/clear_refs` between the phases of `train()` (setup, train, evaluate, save), so a
phase's peak is its own. Disk is the size of each artefact after its stage. Results go to
`benchmarks/results/mission_scale/fraction-<f>.json` as each stage finishes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results" / "mission_scale"
STAGES = (
    "prepare_5core", "prepare", "encode", "train_sampled", "train_full", "catalog", "recommend", "image_cost"
)  # fmt: skip
# What each stage writes (removed before it runs again); the catalog stage writes into the sampled model's folder.
STAGE_OUTPUTS = {
    "prepare_5core": ("prepared_5core",),
    "prepare": ("prepared",),
    "encode": ("features",),
    "train_sampled": ("model_sampled",),
    "train_full": ("model_full",),
}
# The acceptance budget covers these (prepare without k-core feeds everything after it).
PIPELINE = ("prepare", "encode", "train_sampled", "catalog", "recommend")
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
RECOMMEND_USERS = 1000


# ---------------------------------------------------------------------------------------------------------------------
# Inside a stage's process
# ---------------------------------------------------------------------------------------------------------------------
def peak_rss_mb() -> float:
    """This process's peak resident memory since the last `reset_peak` (`VmHWM`)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak() -> None:
    """Restarts `VmHWM` from the current RSS (Linux `clear_refs` 5)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


class Phases:
    """Wall time and peak RSS of consecutive phases of one process: `mark(name)` closes the phase that ran since the
    previous mark."""

    def __init__(self):
        self.baseline_rss_mb = rss_mb()
        reset_peak()
        self.started = self.last = time.perf_counter()
        self.records: dict[str, dict[str, float]] = {}

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.records[name] = {"s": now - self.last, "peak_rss_mb": peak_rss_mb()}
        self.last = now
        reset_peak()

    def result(self, **extra) -> dict:
        return {
            "s": time.perf_counter() - self.started,
            "peak_rss_mb": max(record["peak_rss_mb"] for record in self.records.values()),
            "baseline_rss_mb": self.baseline_rss_mb,
            "phases": self.records,
            **extra,
        }


class StopBeforeEvaluation(Exception):
    """Raised in place of a run's evaluation report when only its training steps are measured."""


def run_train(paths: dict, loss: str, args: argparse.Namespace) -> dict:
    """`train()` of one epoch with `loss`, its phases timed through the Trainer's `train` and `evaluation_report`."""
    from unittest import mock

    from genrec_hf.training import ModelArguments, train
    from genrec_hf.training.trainer import GenRecTrainer

    phases, info = Phases(), {}
    measure_only_training = loss == "full"
    original_train, original_report = GenRecTrainer.train, GenRecTrainer.evaluation_report

    def timed_train(trainer, *positional, **keywords):
        phases.mark("setup")
        info["train_sequences"] = len(trainer.train_dataset)
        info["steps_per_epoch"] = len(trainer.get_train_dataloader())
        if measure_only_training and args.full_softmax_steps:
            trainer.args.max_steps = min(args.full_softmax_steps, info["steps_per_epoch"])
        output = original_train(trainer, *positional, **keywords)
        info["steps"] = trainer.state.global_step
        info["train_runtime_s"] = output.metrics["train_runtime"]
        phases.mark("train")
        return output

    def timed_report(trainer, valid, test, *positional, **keywords):
        if measure_only_training:
            raise StopBeforeEvaluation
        info["valid_users"], info["test_users"] = len(valid), len(test)
        report = original_report(trainer, valid, test, *positional, **keywords)
        phases.mark("evaluate")
        return report

    output_dir = paths[f"model_{loss}"]
    training_args = {
        "num_train_epochs": 1,
        "eval_strategy": "no",
        "save_strategy": "no" if measure_only_training else "epoch",
        "load_best_model_at_end": False,
        "save_total_limit": 1,
        "report_to": "none",
        "disable_tqdm": True,
        "logging_steps": 10,
        "seed": args.seed,
    }
    model = ModelArguments(
        item_encoder=MINILM,
        item_encoder_dtype=args.item_encoder_dtype,
        item_text_max_length=args.item_text_max_length,
        fusion="gate",
        loss_negatives=loss,
        feature_cache_dir=paths["features"],
    )
    with (
        mock.patch.object(GenRecTrainer, "train", timed_train),
        mock.patch.object(GenRecTrainer, "evaluation_report", timed_report),
    ):
        try:
            result = train(paths["prepared"], output_dir, model=model, training_args=training_args)
        except StopBeforeEvaluation:
            return phases.result(**info, **_extrapolated_epoch(info))
    result.save()
    phases.mark("save")
    test = result.report.test
    return phases.result(
        **info,
        test_ndcg_at_10=test["ndcg@10"].value if "ndcg@10" in test else None,
        valid_ndcg_at_10=result.report.valid.get("ndcg@10"),
        loss_choice=result.report.model.loss_choice,
    )


def _extrapolated_epoch(info: dict) -> dict:
    """A whole epoch's training time from the steps that ran (the first step included)."""
    per_step = info["train_runtime_s"] / max(1, info["steps"])
    return {"s_per_step": per_step, "epoch_s": per_step * info["steps_per_epoch"],
            "extrapolated": info["steps"] < info["steps_per_epoch"]}  # fmt: skip


def run_encode(paths: dict, args: argparse.Namespace) -> dict:
    """The MiniLM features of every item, as `train()` computes them (and caches them for it). With
    `--resume_encoding`, the chunks an interrupted run saved are kept and the rate counts only the items encoded now.
    """
    from genrec_hf.data import load_prepared
    from genrec_hf.training import ModelArguments
    from genrec_hf.training.run import item_content, training_arguments

    items = load_prepared(paths["prepared"]).items
    already = encoded_rows(Path(paths["features"]))
    phases = Phases()
    model_args = ModelArguments(
        item_encoder=MINILM,
        item_encoder_dtype=args.item_encoder_dtype,
        item_text_max_length=args.item_text_max_length,
        feature_cache_dir=paths["features"],
    )
    training_args = training_arguments(paths["model_sampled"], {"report_to": "none"})
    _, features, _ = item_content(model_args, items, Path(paths["model_sampled"]), training_args)
    phases.mark("encode")
    rate = (len(features) - already) / phases.records["encode"]["s"]
    return phases.result(items=len(features), resumed_items=already, items_per_s=rate, whole_s=len(features) / rate)


def encoded_rows(features_dir: Path) -> int:
    """Items in the chunks that an interrupted feature-cache run left in `features_dir` (`*.chunks/chunk-*`)."""
    from safetensors import safe_open

    rows = 0
    for chunk in features_dir.glob("*.chunks/chunk-*.safetensors"):
        with safe_open(chunk, "pt") as tensors:
            rows += tensors.get_slice("text_features").get_shape()[0]
    return rows


def run_prepare(paths: dict, kcore: int) -> dict:
    """`prepare_dataset` (what `scripts/prepare_data.py` runs); a k-core that leaves nothing is a result, not a
    failure (most users of these categories write one review)."""
    from genrec_hf.data import prepare_dataset

    phases = Phases()
    output = paths["prepared" if kcore == 0 else "prepared_5core"]
    try:
        stats = prepare_dataset(paths["reviews"], paths["metas"], output_dir=output, kcore=kcore).stats
    except ValueError as error:
        if "no interaction left" not in str(error):
            raise
        stats = {"users": 0, "items": 0, "interactions": 0, "empty": str(error).splitlines()[0]}
    phases.mark("prepare")
    keys = ("users", "items", "interactions", "avg_seq_len", "rows", "dropped", "empty")
    return phases.result(stats={key: stats[key] for key in keys if key in stats})


def run_catalog(paths: dict, args: argparse.Namespace) -> dict:
    import contextlib
    import io

    from genrec_hf.commands import precompute

    phases = Phases()
    argv = ["--model", paths["model_sampled"], "--faiss_index", args.faiss_index, *shlex.split(args.faiss_args)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = precompute.main(argv)
    if status != 0:
        raise RuntimeError(f"precompute exited with {status}")
    phases.mark("catalog")
    return phases.result(summary=json.loads(printed.getvalue().strip().splitlines()[-1]))


def run_recommend(paths: dict, args: argparse.Namespace) -> dict:
    import random

    from genrec_hf.commands import recommend
    from genrec_hf.data import load_prepared

    test = load_prepared(paths["prepared"]).splits["test"]
    with_history = [row for row, history in enumerate(test["history"][:]) if history]
    chosen = sorted(random.Random(args.seed).sample(with_history, min(RECOMMEND_USERS, len(with_history))))
    history_file = Path(paths["work"]) / "recommend_histories.jsonl"
    rows = test.select(chosen)
    history_file.write_text(
        "".join(json.dumps({"user_id": u, "history": h}) + "\n" for u, h in zip(rows["user_id"], rows["history"]))
    )
    phases = Phases()
    status = recommend.main(["--model", paths["model_sampled"], "--history", str(history_file),
                             "--output", str(Path(paths["work"]) / "recommendations.jsonl")])  # fmt: skip
    if status != 0:
        raise RuntimeError(f"recommend exited with {status}")
    phases.mark("recommend")
    seconds = phases.records["recommend"]["s"]
    return phases.result(users=len(chosen), users_per_s=len(chosen) / seconds)


def run_image_cost(paths: dict, args: argparse.Namespace) -> dict:
    """Seconds per image added to item encoding by a ViT-B/32-sized CLIP: the same items encoded with and without
    their photo (decode, resize and crop, vision tower), the difference divided by the photos."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    sys.path.insert(0, str(BENCHMARKS))
    sys.path.insert(0, str(BENCHMARKS.parent))
    from bench_encoding import best_times, gift_card_items

    from genrec_hf import GenRecProcessor, ItemEncoder
    from tests.fixtures.offline_clip import clip_tokenizer_from_open_clip

    torch.manual_seed(0)
    processor = GenRecProcessor(
        CLIPImageProcessorPil(), clip_tokenizer_from_open_clip(), item_vocab=["placeholder"], text_max_length=77
    )
    encoder = ItemEncoder(CLIPModel(CLIPConfig(projection_dim=512)), "clip", "random ViT-B/32-sized CLIP")
    with_photos = [item for item in gift_card_items(args.image_items) if item.get("image_path")]
    without = [{**item, "image_path": None} for item in with_photos]
    phases = Phases()
    encode_with, encode_without = best_times(
        [lambda: encoder.encode(with_photos, processor, show_progress=False),
         lambda: encoder.encode(without, processor, show_progress=False)], repeats=2,
    )  # fmt: skip
    phases.mark("image_cost")
    per_image = (encode_with - encode_without) / len(with_photos)
    text_only = encode_without / len(without)
    return phases.result(images=len(with_photos), s_per_image=per_image, text_only_s_per_item=text_only)


def run_stage(stage: str, paths: dict, args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    if stage in ("prepare", "prepare_5core"):
        return run_prepare(paths, kcore=0 if stage == "prepare" else 5)
    if stage == "encode":
        return run_encode(paths, args)
    if stage in ("train_sampled", "train_full"):
        return run_train(paths, stage.removeprefix("train_"), args)
    if stage == "catalog":
        return run_catalog(paths, args)
    if stage == "recommend":
        return run_recommend(paths, args)
    return run_image_cost(paths, args)


# ---------------------------------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------------------------------
def work_paths(work: Path) -> dict:
    sys.path.insert(0, str(BENCHMARKS))
    from mission_data import CATEGORIES

    raw = work / "raw"
    return {
        "work": str(work),
        "raw": str(raw),
        "reviews": [str(raw / f"{c.name}.jsonl.gz") for c in CATEGORIES],
        "metas": [str(raw / f"meta_{c.name}.jsonl.gz") for c in CATEGORIES],
        "prepared_5core": str(work / "prepared_5core"),
        "prepared": str(work / "prepared"),
        "features": str(work / "features"),
        "model_sampled": str(work / "model_sampled"),
        "model_full": str(work / "model_full"),
    }


def disk_mb(path: str | Path, exclude: tuple[str, ...] = ()) -> float:
    """Bytes under `path` (a file or folder), without the subfolders named in `exclude`, in MiB."""
    path = Path(path)
    if not path.exists():
        return 0.0
    if path.is_file():
        return path.stat().st_size / 2**20
    total = 0
    for root, folders, files in os.walk(path):
        folders[:] = [f for f in folders if f not in exclude]
        total += sum((Path(root) / name).stat().st_size for name in files)
    return total / 2**20


def artefact_sizes(paths: dict) -> dict[str, float]:
    """MiB of every artefact written so far (missing ones are 0), the last checkpoint also file by file."""
    model = Path(paths["model_sampled"])
    model_files = [p for p in model.iterdir() if p.is_file()] if model.exists() else []
    checkpoints = sorted(model.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    sizes = {
        "raw files": sum(disk_mb(p) for p in [*paths["reviews"], *paths["metas"]]),
        "prepared (5-core)": disk_mb(paths["prepared_5core"]),
        "prepared": disk_mb(paths["prepared"]),
        "feature cache": disk_mb(paths["features"]),
        "model weights, config and processor": sum(
            disk_mb(p) for p in model_files if not p.name.startswith(("item_catalog", "item_features"))
        ),
        "model features file": disk_mb(model / "item_features.safetensors"),
        "checkpoint": disk_mb(checkpoints[-1]) if checkpoints else 0.0,
        "catalog (vectors + FAISS index)": sum(disk_mb(p) for p in model.glob("item_catalog*")),
    }
    if checkpoints:
        sizes.update({f"checkpoint: {p.name}": disk_mb(p) for p in sorted(checkpoints[-1].iterdir()) if p.is_file()})
    return {name: round(size, 1) for name, size in sizes.items()}


def run_in_child(stage: str, paths: dict, argv: list[str], threads: int) -> dict:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    log = Path(paths["work"]) / f"{stage}.log"
    command = [sys.executable, __file__, "_stage", stage, json.dumps(paths), *argv]
    with open(log, "w") as output:
        completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=output, text=True, env=env)
    if completed.returncode != 0:
        tail = log.read_text().strip().splitlines()[-5:]
        return {"error": f"exit {completed.returncode}: " + " | ".join(tail), "log": str(log)}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_fraction(fraction: float, args: argparse.Namespace, argv: list[str]) -> Path:
    sys.path.insert(0, str(BENCHMARKS))
    from mission_data import published_totals, write_mission_files

    work = Path(args.work_dir) / f"fraction-{fraction:g}"
    paths = work_paths(work)
    for stage in args.stages:  # a stage starts cold: its own outputs are removed (the raw files are kept)
        if not (stage == "encode" and args.resume_encoding):
            subprocess.run(["rm", "-rf", *[paths[name] for name in STAGE_OUTPUTS.get(stage, ())]], check=True)
    output = RESULTS / f"fraction-{fraction:g}.json"
    started = time.perf_counter()
    write_mission_files(paths["raw"], fraction, args.seed)
    previous = json.loads(output.read_text()) if output.exists() else {}
    result = {
        "fraction": fraction,
        "published_totals": published_totals(fraction),
        "generate_s": time.perf_counter() - started,
        "commands": [*previous.get("commands", []), "python benchmarks/bench_mission_scale.py run " + " ".join(argv)],
        "machine": {
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },  # fmt: skip
        "stages": previous.get("stages", {}),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    for stage in args.stages:
        load = os.getloadavg()[0]
        started = time.perf_counter()
        record = run_in_child(stage, paths, argv, args.threads)
        record.update(
            load_average_before=load,
            load_average_after=os.getloadavg()[0],
            threads=args.threads,
            item_encoder_dtype=args.item_encoder_dtype,
            item_text_max_length=args.item_text_max_length,
        )
        result["stages"][stage] = record
        result["disk_mb"] = artefact_sizes(paths)
        output.write_text(json.dumps(result, indent=2))
        status = record.get("error") or f"{record['s']:.1f} s, peak RSS {record['peak_rss_mb']:.0f} MiB"
        print(f"fraction {fraction:g} {stage}: {status} ({time.perf_counter() - started:.0f} s with startup)",
              file=sys.stderr)  # fmt: skip
    return output


# ---------------------------------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------------------------------
def growth_exponent(sizes: list[float], values: list[float]) -> float | None:
    """Least-squares slope of log(value) against log(size): 1 is linear growth, 0 a constant."""
    points = [(math.log(s), math.log(v)) for s, v in zip(sizes, values) if s > 0 and v and v > 0]
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else None


def stage_seconds(stage: str, record: dict) -> float:
    """A stage's time; a capped full-softmax epoch counts its extrapolated whole-epoch training time."""
    if stage == "train_full" and "epoch_s" in record:
        return record["phases"]["setup"]["s"] + record["epoch_s"]
    if stage == "encode" and record.get("resumed_items"):
        return record["whole_s"]  # the whole catalog at the rate of the resumed part
    return record["s"]


def load_results() -> list[dict]:
    return sorted((json.loads(p.read_text()) for p in RESULTS.glob("fraction-*.json")), key=lambda r: r["fraction"])


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def format_tables(results: list[dict]) -> str:
    if not results:
        return f"no results in {RESULTS}"
    lines = []
    for result in results:
        totals, stages = result["published_totals"], result["stages"]
        prepared = stages.get("prepare", {}).get("stats", {})
        lines += [
            f"\n#### {result['fraction']:g} of the mission size: {totals['ratings']:,} reviews, {totals['users']:,} "
            f"users, {totals['items']:,} items generated; prepared (no k-core): {prepared.get('users', 0):,} users, "
            f"{prepared.get('items', 0):,} items, {prepared.get('interactions', 0):,} interactions",
            "",
            "| stage | time | peak RSS | phases (time, peak RSS) | notes |",
            "|---|---|---|---|---|",
        ]
        for stage in STAGES:
            record = stages.get(stage)
            if record is None:
                continue
            if "error" in record:
                lines.append(f"| {stage} | failed | | | {record['error'][:200]} |")
                continue
            phases = ", ".join(
                f"{name} {_fmt_s(p['s'])} / {p['peak_rss_mb']:,.0f} MiB" for name, p in record["phases"].items()
            ) if len(record["phases"]) > 1 else ""  # fmt: skip
            lines.append(
                f"| {stage} | {_fmt_s(stage_seconds(stage, record))} | {record['peak_rss_mb']:,.0f} MiB | {phases} | "
                f"{_stage_note(stage, record)} |"
            )
        pipeline = [stage_seconds(s, stages[s]) for s in PIPELINE if s in stages and "error" not in stages[s]]
        peaks = [stages[s]["peak_rss_mb"] for s in PIPELINE if s in stages and "error" not in stages[s]]
        if len(pipeline) == len(PIPELINE):
            lines.append(
                f"\npipeline ({' + '.join(PIPELINE)}): **{_fmt_s(sum(pipeline))}**, largest peak RSS "
                f"**{max(peaks):,.0f} MiB**; load average {stages['prepare']['load_average_before']:.1f} at the start"
            )
        lines.append("\n" + "; ".join(f"{name} {size:,.1f} MiB" for name, size in result.get("disk_mb", {}).items()))
    lines += _growth_table(results)
    return "\n".join(lines)


def _stage_note(stage: str, record: dict) -> str:
    if stage == "encode":
        dtype = record.get("item_encoder_dtype", "float32")
        note = (
            f"{record['items']:,} items, {record['items_per_s']:.1f} items/s, {dtype}, {record.get('threads')} threads"
        )
        if record.get("resumed_items"):
            note += (f"; resumed after {record['resumed_items']:,} items (killed run): time = all items at the rate of "
                     f"the {record['items'] - record['resumed_items']:,} encoded in {_fmt_s(record['s'])}")  # fmt: skip
        return note
    if stage == "train_sampled":
        return (f"{record['train_sequences']:,} training sequences, {record['steps']} steps; evaluated "
                f"{record['valid_users']:,} valid + {record['test_users']:,} test users")  # fmt: skip
    if stage == "train_full":
        extrapolated = " (extrapolated from these steps)" if record.get("extrapolated") else ""
        return (f"{record['steps']} of {record['steps_per_epoch']} steps, {record['s_per_step']:.2f} s/step, "
                f"epoch {_fmt_s(record['epoch_s'])}{extrapolated}")  # fmt: skip
    if stage == "catalog":
        faiss = record["summary"].get("faiss") or {}
        return ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in faiss.items())
    if stage == "recommend":
        return f"{record['users']:,} users, {record['users_per_s']:.0f} users/s (model and catalog loading included)"
    if stage == "image_cost":
        return (f"{record['s_per_image'] * 1e3:.0f} ms per image over {record['images']} photos (ViT-B/32 shapes, "
                f"random weights)")  # fmt: skip
    return ""


def _growth_table(results: list[dict]) -> list[str]:
    if len(results) < 2:
        return []
    fractions = [r["fraction"] for r in results]
    lines = [
        "",
        f"Growth exponents (log-log slope over fractions {', '.join(f'{f:g}' for f in fractions)}; 1 = linear):",
        "",
        "| stage | time exponent | peak RSS exponent (above the process's RSS after imports) |",
        "|---|---|---|",
    ]
    for stage in STAGES:
        records = [r["stages"].get(stage) for r in results]
        if stage == "image_cost" or any(rec is None or "error" in rec for rec in records):
            continue
        times = growth_exponent(fractions, [stage_seconds(stage, rec) for rec in records])
        memory = growth_exponent(fractions, [rec["peak_rss_mb"] - rec["baseline_rss_mb"] for rec in records])
        lines.append(f"| {stage} | {_fmt_exponent(times)} | {_fmt_exponent(memory)} |")
    image = [r["stages"].get("image_cost") for r in results]
    latest = next((rec for rec in reversed(image) if rec and "error" not in rec), None)
    if latest:
        for result in results:
            items = result["stages"].get("encode", {}).get("items")
            if items:
                lines.append(
                    f"\nimage encoding estimate at {result['fraction']:g}: {items:,} items x "
                    f"{latest['s_per_image'] * 1e3:.0f} ms = {_fmt_s(items * latest['s_per_image'])} (if every item "
                    "has a photo)"
                )
    return lines


def _fmt_exponent(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_stage":
        stage, paths = argv[1], json.loads(argv[2])
        args = build_parser().parse_args(["run", *argv[3:]])
        print(json.dumps(run_stage(stage, paths, args)))
        return
    args = build_parser().parse_args(argv)
    if args.command == "table":
        print(format_tables(load_results()))
        return
    for fraction in args.fractions:
        print(f"results: {run_fraction(fraction, args, argv[1:])}", file=sys.stderr)
    print(format_tables(load_results()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "table"])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    parser.add_argument(
        "--work_dir", default="/tmp/genrec_mission", help="Raw files and every artefact (not the repo)."
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every stage.")
    parser.add_argument(
        "--item_encoder_dtype",
        default="float32",
        choices=["float32", "bfloat16"],
        help="MiniLM's compute type (bfloat16: faster on CPUs with bf16 instructions).",
    )
    parser.add_argument(
        "--item_text_max_length", type=int, default=128,
        help="Tokens of each item text MiniLM reads (128: its training length; 256: sentence-transformers' limit).",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--full_softmax_steps", type=int, default=None,
        help="Run at most this many full-softmax steps and extrapolate the epoch (default: the whole epoch).",
    )  # fmt: skip
    parser.add_argument(
        "--resume_encoding",
        action="store_true",
        help="Keep the chunks an interrupted encode stage saved; its time is then the rest, its rate over the rest.",
    )
    parser.add_argument("--faiss_index", default="ivf", choices=["flat", "ivf", "hnsw"])
    parser.add_argument("--faiss_args", default="", help="More precompute options, e.g. '--hnsw_m 32'.")
    parser.add_argument("--image_items", type=int, default=64, help="Photos timed for the per-image cost.")
    return parser


if __name__ == "__main__":
    main()

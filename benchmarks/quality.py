"""Recommendation quality on the published benchmark splits, as markdown table rows with the commands behind them.

    python benchmarks/quality.py beauty                      # Amazon 2014 Beauty, ID-only (SASRec-equivalent)
    python benchmarks/quality.py scientific                  # Amazon 2018 Scientific: ID-only, MiniLM content, gate
    python benchmarks/quality.py all_beauty                  # Amazon 2023 All_Beauty (raw 2023 files), 3 seeds
    python benchmarks/quality.py gift_cards --tiny_clip      # Gift Cards with photos, plus an image-path smoke run
    python benchmarks/quality.py table [--summary]           # reprint the rows of every finished run
    python benchmarks/quality.py beauty -- --num_train_epochs 5   # after `--`: extra scripts/train.py arguments
    python benchmarks/quality.py beauty --finalize           # score the best checkpoint of a run stopped early
    python benchmarks/quality.py beauty --refit_epochs 35    # refit on train + valid for 35 epochs, test only

Each dataset is prepared once into `--cache_dir` (the benchmark readers of `genrec_hf.data.benchmark_formats` for
the published files, `prepare_dataset` for the 2023-schema raw files), then every variant is trained by
`genrec_hf.commands.train` (the code of `scripts/train.py`) with the fixed hyper-parameters below into
`--runs_dir`. A run is trained under one ranking protocol (all catalog items ranked, or the user's history items
removed; checkpoint selection uses valid NDCG@10 under that protocol) and its saved best model is re-scored under the
other protocol by `RankingEvaluator`, so every run reports both. The popularity row is the baseline every run
computes on the same split.

Rows go to stdout and to `benchmarks/results/<dataset>/<variant>-seed<k>[-refit].json` (the run's `metrics.json`,
the `EvaluationReport` of both protocols and the command), which the `table` command reads back. A run stopped
before its last epoch (a time budget) is scored from its best checkpoint by `--finalize`; its row says so. Runs whose
metrics exist are not retrained (`--force` retrains). Training time is the Trainer's `train_runtime` (it includes the
per-epoch validation) on the machine that ran it: on a shared 2-core machine it varies by 15-30% from run to run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

from genrec_hf.evaluation import Estimate, EvaluationReport

REPO = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
METRICS = (("hr@10", "HR@10"), ("ndcg@10", "NDCG@10"), ("mrr", "MRR"))

# Shared by every run: per-epoch validation keeping the best checkpoint by valid NDCG@10 (the cli defaults),
# a constant learning rate, only the best checkpoint on disk, no progress bars.
COMMON = [
    "--learning_rate", "1e-3", "--lr_scheduler_type", "constant", "--save_total_limit", "1",
    "--logging_steps", "100", "--disable_tqdm", "true", "--report_to", "none",
]  # fmt: skip
# Variant -> model arguments. ID-only turns ID-dropout off: with no content, a dropped ID is a zero vector.
ID_ONLY = ["--item_encoder", "none", "--fusion", "id", "--id_dropout", "0"]
VARIANTS = {
    "id": ID_ONLY,
    # the same model trained against in-batch targets + 256 uniform items with the log-Q correction
    "id_sampled": [*ID_ONLY, "--loss_negatives", "sampled", "--num_sampled_negatives", "256"],
    "content": ["--item_encoder", MINILM, "--fusion", "content"],
    "gate": ["--item_encoder", MINILM, "--fusion", "gate"],
    # the gated model against in-batch targets + 1,024 uniform items (log-Q): what `--loss_negatives auto` picks for
    # large catalogs, measured here against the full softmax on a catalog where both are affordable
    "gate_sampled": ["--item_encoder", MINILM, "--fusion", "gate", "--loss_negatives", "sampled"],
    # semantic IDs (3 x 256 residual k-means codes of the MiniLM text vectors + a final code) and the GPT-2 decoder
    "generative": ["--item_encoder", MINILM, "--head", "generative"],
    # the same, its codes quantizing the item vectors of the gated run of the same seed (`gate_run`)
    "generative_gate_codes": ["--item_encoder", MINILM, "--head", "generative"],
}


def hyper(dropout: float, batch_size: int, epochs: int) -> list[str]:
    """The model and schedule shared by every dataset (d=64, 2 layers, 1 head, 50 items) with its own dropout,
    batch size and number of epochs."""
    return ["--hidden_size", "64", "--num_hidden_layers", "2", "--num_attention_heads", "1",
            "--hidden_dropout_prob", str(dropout), "--attention_dropout_prob", str(dropout), "--max_seq_len", "50",
            "--per_device_train_batch_size", str(batch_size), "--num_train_epochs", str(epochs)]  # fmt: skip


# Dataset -> hyper-parameters (chosen on Beauty's validation split only; see benchmarks/README.md).
HYPER = {
    "beauty": hyper(0.2, 128, 15),
    "scientific": hyper(0.2, 256, 20),
    "all_beauty": hyper(0.5, 64, 40),
    "gift_cards": hyper(0.5, 64, 40),
}


def generative_hyper(
    epochs: int, batch_size: int, patience: int | None = None, learning_rate: float = 2e-3
) -> list[str]:
    """The generative head's schedule (its model is `GenRecGenerativeConfig`'s default: 128 wide, 4 layers, 20 items):
    length-grouped batches (its cost is in padded tokens) and per-epoch selection on 1,000 valid users (its beam
    search costs ~10 ms per user on this machine); the final report ranks every valid and test user. Batches of 64
    with early stopping on Beauty and Scientific: 4x the updates of 256 per epoch, so far fewer epochs to the same
    level (Scientific seed 0: valid NDCG@10 0.0703 at epoch 22 against 0.0716 at epoch 32 for batch 256,
    benchmarks/README.md); 32 on the small 2023 sets (at 256 an All_Beauty epoch is a single step). On Beauty lr 5e-4
    (valid NDCG@10 on 1,000 users, seed 0, codes of the gated model: 0.0536 at 2e-3, 0.0622 at 1e-3, 0.069 at 5e-4;
    benchmarks/README.md, generative ablations); on Scientific 1e-3 and 5e-4 are level with 2e-3, which the other
    sets keep."""
    args = ["--per_device_train_batch_size", str(batch_size), "--learning_rate", str(learning_rate),
            "--train_sampling_strategy", "group_by_length", "--max_eval_samples", "1000",
            "--per_device_eval_batch_size", "64", "--num_train_epochs", str(epochs)]  # fmt: skip
    return [*args, "--early_stopping_patience", str(patience)] if patience else args


GENERATIVE_HYPER = {"beauty": generative_hyper(60, 64, 10, learning_rate=5e-4),
                    "scientific": generative_hyper(40, 64, 5),
                    "all_beauty": generative_hyper(60, 32), "gift_cards": generative_hyper(60, 32)}  # fmt: skip
DEFAULTS = {  # dataset -> (variants, seeds, training protocol)
    "beauty": (["id", "gate"], [0, 1, 2], "exclude"),
    "scientific": (["id", "content", "gate"], [0, 1, 2], "exclude"),
    "all_beauty": (["id", "content", "gate"], [0, 1, 2], "exclude"),
    "gift_cards": (["id", "content", "gate"], [0, 1, 2], "exclude"),
}
PUBLISHED = {  # dataset -> rows of (model, R@10, N@10, protocol note, source)
    "beauty": [
        ("SASRec, BCE (Kang & McAuley 2018)", 0.0605, 0.0318, "as reported in TIGER", "Rajput et al. 2023, Table 1"),
        ("TIGER", 0.0648, 0.0384, "generative retrieval", "Rajput et al. 2023, Table 1"),
        ("HSTU", 0.0704, 0.0389, "as reported", "eSASRec benchmark (arXiv 2508.06450)"),
        ("SASRec + sampled softmax (recomputed)", 0.0921, 0.0531, "RecTools, d=64, 1 block, 256 negatives",
         "eSASRec benchmark (arXiv 2508.06450)"),
    ],
    "scientific": [
        ("SASRec", 0.108, 0.055, "approximate", "Hou et al. 2022 (UniSRec), Table 3"),
        ("UniSRec", 0.12, 0.065, "approximate", "Hou et al. 2022 (UniSRec), Table 3"),
    ],
}  # fmt: skip


def prepare(dataset: str, cache_dir: Path, data_root: Path) -> Path:
    """Prepares `dataset` into `cache_dir/<dataset>` once; returns the folder for `--data_dir`."""
    from genrec_hf.data import load_prepared, prepare_dataset
    from genrec_hf.data.benchmark_formats import load_beauty_ids, load_unisrec

    out = cache_dir / dataset
    if dataset in ("beauty", "scientific"):
        if (out / "stats.json").is_file():
            load_prepared(out)
        elif dataset == "beauty":
            folder = data_root / "amazon2014_beauty_ids"
            load_beauty_ids(folder / "Beauty.txt", items=folder / "Beauty_items.jsonl.gz", output_dir=out)
        else:
            load_unisrec(data_root / "amazon2018_scientific_unisrec", "Scientific", output_dir=out)
    elif dataset == "all_beauty":
        raw = data_root / "amazon2023_all_beauty" / "raw"
        prepare_dataset(raw / "All_Beauty.jsonl.gz", raw / "meta_All_Beauty.jsonl.gz", output_dir=out)
    elif dataset == "gift_cards":
        folder = data_root / "amazon2018_gift_cards_mm"
        prepare_dataset(
            folder / "raw2023" / "Gift_Cards.jsonl.gz", folder / "raw2023" / "meta_Gift_Cards.jsonl.gz",
            output_dir=out, images_dir=folder / "images",
        )  # fmt: skip
    else:
        raise ValueError(f"unknown dataset {dataset!r}")
    return out


def refit_data(data_dir: Path) -> Path:
    """A copy of prepared data whose train split also holds the valid rows, so each user's training sequence ends
    with the valid item (the test history): the "refit on train + valid" protocol. Its valid split is then seen in
    training, so a refit run trains a fixed number of epochs and is judged on test only."""
    from datasets import concatenate_datasets

    from genrec_hf.data import load_prepared
    from genrec_hf.data.benchmark_formats import save_prepared

    out = data_dir.with_name(data_dir.name + "_refit")
    if not (out / "stats.json").is_file():
        data = load_prepared(data_dir)
        data.splits["train"] = concatenate_datasets([data.splits["train"], data.splits["valid"]])
        data.stats = {**data.stats, "refit": "train split = train + valid rows"}
        save_prepared(data, out)
    return out


def tiny_clip(cache_dir: Path) -> Path:
    """A tiny CLIP with random weights (the test fixture), to show the image path runs: not a quality number."""
    folder = cache_dir / "tiny-random-clip"
    if not (folder / "config.json").is_file():
        sys.path.insert(0, str(REPO))
        from tests.fixtures.clip import save_tiny_clip

        folder.mkdir(parents=True, exist_ok=True)
        save_tiny_clip(folder)
    return folder


def train_argv(dataset: str, variant_args: list[str], data_dir: Path, run_dir: Path, seed: int, protocol: str,
               cache_dir: Path, extra: list[str]) -> list[str]:  # fmt: skip
    generative = "generative" in variant_args
    hyper_args = [*COMMON, *GENERATIVE_HYPER[dataset]] if generative else [*HYPER[dataset], *COMMON]
    argv = ["--data_dir", str(data_dir), *variant_args, *hyper_args, "--seed", str(seed),
            "--output_dir", str(run_dir), "--feature_cache_dir", str(cache_dir / "features" / dataset)]  # fmt: skip
    return [*argv, "--exclude_history", "true" if protocol == "exclude" else "false", *extra]


def rescore(model_dir: Path, data_dir: Path, seed: int, num_beams: int | None = None) -> dict[bool, EvaluationReport]:
    """Valid / test metrics (test with CIs) and the popularity baseline of the model saved in `model_dir` under both
    ranking protocols (`exclude_history` True and False), by the evaluator that scores every training run. Each
    split is scored once and ranked both ways (a generative model's beam search is its cost); `num_beams` replaces
    a generative model's own."""
    from transformers import AutoModel

    from genrec_hf.data import load_prepared
    from genrec_hf.evaluation import RankingEvaluator
    from genrec_hf.evaluation.evaluator import beams_of
    from genrec_hf.processing_genrec import GenRecProcessor
    from genrec_hf.sequences import eval_examples, item_counts, train_sequences

    data = load_prepared(data_dir)
    processor = GenRecProcessor.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()  # either head
    if num_beams:
        model.config.num_beams = num_beams
    train = train_sequences(data.splits["train"], processor)
    valid, test = (eval_examples(data.splits[name], processor) for name in ("valid", "test"))
    batch_size = 64 if beams_of(model) else 256  # 64 users x 20 beams of key/value cache is already ~0.5 GB
    evaluator = RankingEvaluator(exclude_history=True, batch_size=batch_size, seed=seed)
    report = evaluator.report(model, valid, test, item_counts(train, processor.num_items))
    return {True: dataclasses.replace(report, other_protocol=None), False: report.other_protocol}


def protocol_name(exclude_history: bool) -> str:
    return "history excluded" if exclude_history else "all items"


def interrupted_training(run_dir: Path) -> tuple[Path, dict]:
    """The best checkpoint of a run stopped before its end, and what its `trainer_state.json` says of training."""
    from genrec_hf.training.weight_averaging import TRAINING_WEIGHTS_NAME

    checkpoints = sorted(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    if not checkpoints:
        raise FileNotFoundError(f"{run_dir} has no checkpoint to finalize")
    state = json.loads((checkpoints[-1] / "trainer_state.json").read_text())
    best = Path(state["best_model_checkpoint"] or checkpoints[-1])
    evals = [e for e in state["log_history"] if "eval_ndcg@10" in e]
    wall = checkpoints[-1].stat().st_mtime - float((run_dir / "started_at").read_text())
    training = {
        "global_step": state["global_step"], "epochs_completed": state["epoch"], "best_checkpoint": str(best),
        "train_runtime_s": wall, "stopped": "interrupted before the last epoch (time budget); best checkpoint scored",
        "valid_ndcg@10_per_epoch": [e["eval_ndcg@10"] for e in evals],
        "weight_averaged": (best / TRAINING_WEIGHTS_NAME).is_file(),  # saved beside the average only
    }  # fmt: skip
    return best, training


def run(dataset: str, variant: str, seed: int, protocol: str, args: argparse.Namespace) -> dict:
    """Trains one run (unless its result exists) and scores its best model under both protocols; with
    `args.finalize`, scores the best checkpoint of a run that was stopped instead of training."""
    from genrec_hf.commands.train import main as train_main

    result_path = RESULTS / dataset / f"{variant}-seed{seed}{'-refit' if args.refit_epochs else ''}.json"
    if result_path.is_file() and not args.force:
        return json.loads(result_path.read_text())
    data_dir = prepare(dataset, args.cache_dir, args.data_root)
    if args.refit_epochs:
        data_dir = refit_data(data_dir)
    variant_args = VARIANTS.get(variant) or ["--item_encoder", str(tiny_clip(args.cache_dir)), "--fusion", "content"]
    run_dir = args.runs_dir / dataset / result_path.stem
    extra = args.extra
    if args.refit_epochs:  # no selection on the (now trained-on) valid split: a fixed number of epochs
        extra = ["--num_train_epochs", str(args.refit_epochs), "--eval_strategy", "no", "--save_strategy", "no",
                 "--load_best_model_at_end", "false", *extra]  # fmt: skip
    if variant == "generative_gate_codes":
        variant_args = [*variant_args, "--semantic_ids_from", str(gate_run(dataset, seed, protocol, args))]
    argv = train_argv(dataset, variant_args, data_dir, run_dir, seed, protocol, args.cache_dir, extra)
    selection = protocol == "exclude"
    if args.finalize:
        model_dir, training = interrupted_training(run_dir)
        protocols, metrics = {}, None
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "started_at").write_text(str(time.time()))  # read by --finalize if the run is stopped
        start = time.perf_counter()
        metrics = train_main(argv)
        report = EvaluationReport.from_dict(metrics)
        model_dir, training = run_dir, {**report.training.to_dict(), "wall_s": time.perf_counter() - start}
        protocols = {protocol_name(selection): evaluation_only(report)}
        if report.other_protocol is not None:  # the same scores ranked the other way (train's final report)
            protocols[protocol_name(not selection)] = evaluation_only(report.other_protocol)
    if len(protocols) < 2:
        for exclude, report in rescore(model_dir, data_dir, seed).items():
            protocols.setdefault(protocol_name(exclude), evaluation_only(report))
    result = {
        "dataset": dataset, "variant": variant, "seed": seed, "selection_protocol": protocol_name(selection),
        "refit_on_valid": bool(args.refit_epochs),
        "command": "python scripts/train.py " + shlex.join(argv), "training": training, "protocols": protocols,
        "train_main_metrics": metrics,
    }  # fmt: skip
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.write_text(json.dumps(result, indent=2))
    return result


def gate_run(dataset: str, seed: int, protocol: str, args: argparse.Namespace) -> Path:
    """The saved gated model of `seed` in `--runs_dir`; trained (its result file rewritten) when the folder has none."""
    run_dir = args.runs_dir / dataset / f"gate-seed{seed}"
    if not (run_dir / "model.safetensors").is_file():
        run(
            dataset,
            "gate",
            seed,
            protocol,
            argparse.Namespace(**{**vars(args), "force": True, "finalize": False, "extra": [], "refit_epochs": None}),
        )
    return run_dir


def evaluation_only(report: EvaluationReport) -> dict:
    """A report's numbers and protocol, without the run (the result file records the run once)."""
    return dataclasses.replace(report, model=None, data=None, training=None, other_protocol=None).to_dict()


def protocol_report(result: dict, protocol: str) -> EvaluationReport:
    """The report of one protocol of a result file (older files hold the same sections without `protocol`)."""
    return EvaluationReport.from_dict(result["protocols"][protocol])


def _cell(metric: Estimate) -> str:
    return f"{metric.value:.4f} [{metric.ci_low:.4f}, {metric.ci_high:.4f}]"


VARIANT_NAMES = {"id": "ID-only", "id_sampled": "ID-only, sampled softmax (in-batch + 256 uniform, log-Q)",
                 "content": "content (MiniLM)", "gate": "gated fusion (MiniLM)",
                 "gate_sampled": "gated fusion (MiniLM), sampled softmax (in-batch + 1,024 uniform, log-Q)",
                 "generative": "generative: semantic IDs (MiniLM), GPT-2 decoder, 20 beams",
                 "generative_gate_codes": "generative: semantic IDs of the gated model's item vectors, GPT-2 decoder, "
                 "20 beams",
                 "tiny_clip": "content, tiny RANDOM CLIP (image path smoke run, not a quality number)"}  # fmt: skip


NO_WEIGHT_AVERAGING, NOT_WHITENED = ", former recipe (no weight averaging)", ", former recipe (content not whitened)"
FULLY_WHITENED = ", former recipe (content whitened with epsilon 0.1)"


def former_recipe(result: dict) -> str:
    """How a run differs from today's recipe ("" for none): trained before weight averaging became the default (its
    metrics record no `weight_averaging_epochs`, or it was turned off), or, for a dense head with content, before
    content whitening did (its model summary records no `content_whitened`) or while it used epsilon 0.1 (no
    `content_whitening_epsilon` recorded). A run scored by `--finalize` records only whether its checkpoint holds a
    weight average (`weight_averaged`)."""
    metrics = result["train_main_metrics"]
    if "generative" in result["variant"]:
        rate, today = learning_rate(result["command"].split()), learning_rate(GENERATIVE_HYPER[result["dataset"]])
        if rate != today:
            return f", former schedule (lr {rate:g}; today {today:g})"
    if metrics is None:
        return "" if result["training"].get("weight_averaged") else NO_WEIGHT_AVERAGING
    if not (metrics["training"].get("hyperparameters") or {}).get("weight_averaging_epochs"):
        return NO_WEIGHT_AVERAGING
    model = metrics["model"]
    if model["fusion"] in ("id", "semantic_ids"):
        return ""
    if "content_whitened" not in model:
        return NOT_WHITENED
    return "" if "content_whitening_epsilon" in model else FULLY_WHITENED


def learning_rate(argv: list[str]) -> float:
    """The learning rate a training command line sets (its last `--learning_rate`, as the argument parser reads it)."""
    last = max(i for i, arg in enumerate(argv) if arg == "--learning_rate")
    return float(argv[last + 1])


def group_key(result: dict) -> str:
    """Runs averaged together in a summary row: the same variant, refit or not, and the same recipe."""
    refit = "-refit" if result.get("refit_on_valid") else ""
    return result["variant"] + refit + former_recipe(result)


def display_name(result: dict) -> str:
    refit = (
        f", refit on train + valid ({result['training']['epochs']:.0f} epochs)" if result.get("refit_on_valid") else ""
    )
    return VARIANT_NAMES[result["variant"]] + refit + former_recipe(result)


def rows(result: dict) -> list[str]:
    """Markdown rows of one result: the model under both protocols, then (ID-only runs) the popularity baseline."""
    training = result["training"]
    time_cell = f"{training['train_runtime_s'] / 60:.1f} min ({training['global_step']} steps)"
    if "stopped" in training:
        time_cell += f", stopped after {training['epochs_completed']:.0f} epochs"
    lines = []
    for exclude in (False, True):
        protocol = protocol_name(exclude)
        test = protocol_report(result, protocol).test
        selected = protocol == result["selection_protocol"]
        command = f"`{result['command']}`" if selected else "same model, re-scored"
        cells = [
            result["dataset"],
            display_name(result),
            protocol + (" (selection)" if selected and not result.get("refit_on_valid") else ""),
            *(_cell(test[key]) for key, _ in METRICS),
            str(result["seed"]),
            time_cell,
            command,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if result["variant"] == "id" and not result.get("refit_on_valid"):
        for exclude in (False, True):
            test = protocol_report(result, protocol_name(exclude)).popularity.test
            cells = [result["dataset"], "popularity", protocol_name(exclude), *(_cell(test[k]) for k, _ in METRICS),
                     "-", "-", "computed by the ID-only run"]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return lines


HEADER = (
    "| dataset | variant | protocol | HR@10 [95% CI] | NDCG@10 [95% CI] | MRR [95% CI] | seed | training time "
    "| command |\n|---|---|---|---|---|---|---|---|---|"
)


def table(results: list[dict]) -> str:
    return "\n".join([HEADER, *(line for result in results for line in rows(result))])


def _summary_cell(tests: list[dict[str, Estimate]], key: str) -> str:
    """Mean over seeds (± their standard deviation when several) and the first seed's bootstrap CI."""
    values = [t[key].value for t in tests]
    mean = sum(values) / len(values)
    spread = f" ±{(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5:.4f}" if len(values) > 1 else ""
    return f"{mean:.4f}{spread} [{tests[0][key].ci_low:.4f}, {tests[0][key].ci_high:.4f}]"


def summary(results: list[dict]) -> str:
    """One row per variant and protocol over all seeds, the popularity baseline first; commands listed below."""
    by_variant: dict[str, list[dict]] = {}
    for result in sorted(results, key=lambda r: r["seed"]):
        by_variant.setdefault(group_key(result), []).append(result)
    lines = ["| dataset | variant | protocol | HR@10 | NDCG@10 | MRR | seeds | training time (mean) |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    commands = []
    id_runs = by_variant.get("id") or by_variant.get("id" + NO_WEIGHT_AVERAGING)
    groups = [("popularity", id_runs, "popularity")] if id_runs else []
    order = list(VARIANT_NAMES)  # each variant's groups together (today's recipe first), in the table's order
    keys = sorted(by_variant, key=lambda key: (order.index(by_variant[key][0]["variant"]), key))
    groups += [(display_name(by_variant[key][0]), by_variant[key], "test") for key in keys]
    for name, group, part in groups:
        seeds = ", ".join(str(r["seed"]) for r in group)
        minutes = sum(r["training"]["train_runtime_s"] for r in group) / len(group) / 60
        stopped = "".join(f", stopped after {r['training']['epochs_completed']:.0f} epochs (time budget)"
                          for r in group[:1] if "stopped" in r["training"])  # fmt: skip
        for exclude in (False, True):
            protocol = protocol_name(exclude)
            reports = [protocol_report(r, protocol) for r in group]
            tests = [r.popularity.test if part == "popularity" else r.test for r in reports]
            cells = [
                group[0]["dataset"],
                name,
                protocol,
                *(_summary_cell(tests, key) for key, _ in METRICS),
                "-" if part == "popularity" else seeds,
                "-" if part == "popularity" else f"{minutes:.1f} min{stopped}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        if part == "test":
            selection = (
                "fixed epochs, no selection"
                if group[0].get("refit_on_valid")
                else f"selection: {group[0]['selection_protocol']}"
            )
            commands.append(f"- {name}: `{group[0]['command']}` ({selection})")
    note = ("Values: mean over seeds (± standard deviation over seeds when several) [95% bootstrap CI over users of "
            "the first seed].")  # fmt: skip
    return "\n".join(
        [*lines, "", note, "", "Commands (first seed; other seeds change `--seed` and `--output_dir`):", *commands]
    )


def published(dataset: str) -> str:
    lines = ["| published model | R@10 | N@10 | note | source |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {r:.4f} | {n:.4f} | {note} | {src} |" for m, r, n, note, src in PUBLISHED.get(dataset, [])]
    return "\n".join(lines) if dataset in PUBLISHED else ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=[*DEFAULTS, "table"])
    parser.add_argument("--variants", nargs="+", choices=[*VARIANTS, "tiny_clip"], help="default: per dataset")
    parser.add_argument(
        "--seeds", nargs="+", type=int, help="default: 0 (Beauty, Scientific) or 0 1 2 (the small 2023 sets)"
    )
    parser.add_argument("--protocol", choices=["all", "exclude"], help="ranking protocol of checkpoint selection")
    parser.add_argument("--tiny_clip", action="store_true", help="also run the tiny random CLIP (image path)")
    parser.add_argument("--force", action="store_true", help="retrain runs whose results exist")
    parser.add_argument("--summary", action="store_true", help="table: one row per variant over its seeds")
    parser.add_argument(
        "--refit_epochs",
        type=int,
        default=0,
        help="train on train + valid for this many epochs (the best epoch of the selection run), "
        "no checkpoint selection; reports test only (the valid split is seen in training)",
    )
    parser.add_argument(
        "--finalize",
        action="store_true",
        help="score the best checkpoint of runs stopped before their end (no training)",
    )
    parser.add_argument("--cache_dir", type=Path, default=Path("/tmp/genrec_bench/cache"))
    parser.add_argument("--runs_dir", type=Path, default=Path("/tmp/genrec_bench/runs"))
    parser.add_argument("--data_root", type=Path, default=DATA_ROOT)
    argv = sys.argv[1:] if argv is None else argv
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.extra = argv[cut + 1 :]  # after `--`: more scripts/train.py arguments, appended to every run
    if args.dataset == "table":
        for folder in sorted(RESULTS.iterdir()) if RESULTS.is_dir() else []:
            results = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
            results = [r for r in results if "protocols" in r]  # our runs (the peer run has its own format)
            if results:
                rows_text = summary(results) if args.summary else table(results)
                print(f"\n### {folder.name}\n\n{rows_text}\n\n{published(folder.name)}")
        return
    if not args.data_root.is_dir():
        sys.exit(f"{args.data_root} is absent: the benchmarks read the shared real datasets from there")
    variants, seeds, protocol = DEFAULTS[args.dataset]
    variants = (args.variants or variants) + (["tiny_clip"] if args.tiny_clip else [])
    results = [run(args.dataset, v, s, args.protocol or protocol, args) for v in variants for s in args.seeds or seeds]
    print(f"\n{table(results)}\n\n{published(args.dataset)}")


if __name__ == "__main__":
    main()

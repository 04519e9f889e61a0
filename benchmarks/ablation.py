"""One-lever-at-a-time ablations of the sequence model on a benchmark split, judged on valid NDCG@10.

    python benchmarks/ablation.py beauty --levers default bucketed_batches dropout_0.5 --epochs 10
    python benchmarks/ablation.py table                       # reprint every finished ablation

Every run is `benchmarks/quality.py`'s ID-only run of that dataset (same data, hyper-parameters and selection on
valid NDCG@10 with the history excluded) plus the lever's arguments and `--num_train_epochs`; levers named
`generative*` start from its generative run instead (semantic IDs + GPT-2 decoder, its own schedule). Results go to
`benchmarks/results/ablation/<dataset>/<lever>-e<epochs>-seed<k>.json`: the valid curve, the best valid metrics,
the test metrics of the selected model (history excluded) and the seconds per epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402

RESULTS = quality.RESULTS / "ablation"
# Levers relative to today's defaults. The first rounds ran at commit 815f52d, whose levers (cosine scores, absolute
# positions, no sqrt(d) scaling) lost and were removed; their results stay in benchmarks/results/ablation/.


def dropout(rate: str) -> list[str]:
    return ["--hidden_dropout_prob", rate, "--attention_dropout_prob", rate]


GATE = ["--item_encoder", quality.MINILM, "--fusion", "gate"]
WIDTH_128 = ["--hidden_size", "128"]
LEVERS = {
    "default": [],
    "bucketed_batches": ["--train_sampling_strategy", "group_by_length"],
    "dropout_0.3": dropout("0.3"),
    "dropout_0.5": dropout("0.5"),
    "lr5e-4_batch256": ["--learning_rate", "5e-4", "--per_device_train_batch_size", "256"],
    "batch_64": ["--per_device_train_batch_size", "64"],
    "batch_32": ["--per_device_train_batch_size", "32"],
    "batch_32_dropout_0.3": ["--per_device_train_batch_size", "32", *dropout("0.3")],
    "batch_32_dropout_0.5": ["--per_device_train_batch_size", "32", *dropout("0.5")],
    "ffn_1x": ["--intermediate_size", "64"],
    "width_128_dropout_0.3": [*WIDTH_128, *dropout("0.3")],
    "width_128_dropout_0.5": [*WIDTH_128, *dropout("0.5")],
    "content": ["--item_encoder", quality.MINILM, "--fusion", "content"],
    "gate": GATE,
    "gate_width_128_dropout_0.3": [*GATE, *WIDTH_128, *dropout("0.3")],
    "cosine_lr": ["--lr_scheduler_type", "cosine"],
    "lr_2e-3": ["--learning_rate", "2e-3"],
    "gate_dropout_0.5": [*GATE, *dropout("0.5")],
    "gate_id_dropout_0.3": [*GATE, "--id_dropout", "0.3"],
    "gate_id_dropout_0.5": [*GATE, "--id_dropout", "0.5"],
    "weight_decay_0.1": ["--weight_decay", "0.1"],
    "layers_3": ["--num_hidden_layers", "3"],
    "heads_2": ["--num_attention_heads", "2"],
    # the generative head (quality.py's `generative` variant and schedule)
    "generative": [],
    "generative_batch_256": ["--per_device_train_batch_size", "256"],
    "generative_codebook_64": ["--codebook_size", "64"],
    "generative_layers_2": ["--n_layer", "2"],
    "generative_weight_averaging": ["--weight_averaging_epochs", "3"],
    "generative_patience_10": ["--early_stopping_patience", "10"],
}


def run(dataset: str, lever: str, epochs: int, seed: int, args: argparse.Namespace) -> dict:
    from genrec_hf.commands.train import main as train_main
    from genrec_hf.evaluation import EvaluationReport

    path = RESULTS / dataset / f"{lever}-e{epochs}-seed{seed}.json"
    if path.is_file() and not args.force:
        return json.loads(path.read_text())
    data_dir = quality.prepare(dataset, args.cache_dir, args.data_root)
    run_dir = args.runs_dir / "ablation" / dataset / path.stem
    extra = [*LEVERS[lever], "--num_train_epochs", str(epochs), "--bootstrap_samples", "200"]
    base = quality.VARIANTS["generative"] if lever.startswith("generative") else quality.ID_ONLY
    argv = quality.train_argv(dataset, base, data_dir, run_dir, seed, "exclude", args.cache_dir, extra)
    report = EvaluationReport.from_dict(train_main(argv))
    state = json.loads((run_dir / "trainer_state.json").read_text())  # the whole run (checkpoints keep the best)
    curve = [round(e["eval_ndcg@10"], 5) for e in state["log_history"] if "eval_ndcg@10" in e]
    result = {
        "dataset": dataset, "lever": lever, "arguments": LEVERS[lever], "epochs": epochs, "seed": seed,
        "protocol": "history excluded", "valid_ndcg@10_per_epoch": curve,
        "best_epoch": curve.index(max(curve)) + 1, "valid": report.valid,
        "test": {k: v.value for k, v in report.test.items()},
        "seconds_per_epoch": report.training.train_runtime_s / epochs,
        "command": "python scripts/train.py " + " ".join(argv),
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return result


def rescore_with_beams(dataset: str, lever: str, epochs: int, seed: int, beams: int, args: argparse.Namespace) -> dict:
    """A finished generative run's selected model ranked again with `beams` beams (training unchanged)."""
    name = f"{lever}-e{epochs}-seed{seed}"
    path = RESULTS / dataset / f"{name}-beams{beams}.json"
    if path.is_file() and not args.force:
        return json.loads(path.read_text())
    trained = json.loads((RESULTS / dataset / f"{name}.json").read_text())
    data_dir = quality.prepare(dataset, args.cache_dir, args.data_root)
    report = quality.rescore(args.runs_dir / "ablation" / dataset / name, data_dir, seed, num_beams=beams)[True]
    result = {**trained, "lever": f"{lever}, {beams} beams", "num_beams": beams, "valid": report.valid,
              "test": {k: v.value for k, v in report.test.items()}}  # fmt: skip
    path.write_text(json.dumps(result, indent=2))
    return result


def table() -> str:
    columns = ["dataset", "lever", "epochs (best)", "seed", "valid NDCG@10", "valid HR@10", "test NDCG@10"]
    lines = ["| " + " | ".join([*columns, "test HR@10", "s/epoch"]) + " |", "|---" * (len(columns) + 2) + "|"]
    for path in sorted(RESULTS.glob("*/*.json")):
        r = json.loads(path.read_text())
        if "stopped" in r:  # a run stopped by hand: its valid curve only
            curve = r["valid_ndcg@10_per_epoch"]
            lines.append(
                f"| {r['dataset']} | {r['lever']} (stopped after {len(curve)}) | {r['epochs']} "
                f"({curve.index(max(curve)) + 1}) | {r['seed']} | {max(curve):.4f} (1,000 users) | - | - | - | - |"
            )
            continue
        lines.append(
            f"| {r['dataset']} | {r['lever']} | {r['epochs']} ({r['best_epoch']}) | {r['seed']} "
            f"| {r['valid']['ndcg@10']:.4f} | {r['valid']['hr@10']:.4f} | {r['test']['ndcg@10']:.4f} "
            f"| {r['test']['hr@10']:.4f} | {r['seconds_per_epoch']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=[*quality.HYPER, "table"])
    parser.add_argument("--levers", nargs="+", choices=list(LEVERS), default=["default"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--beams", type=int, help="generative levers: rank finished runs again with this many beams")
    parser.add_argument("--cache_dir", type=Path, default=Path("/tmp/genrec_bench/cache"))
    parser.add_argument("--runs_dir", type=Path, default=Path("/tmp/genrec_bench/runs"))
    parser.add_argument("--data_root", type=Path, default=quality.DATA_ROOT)
    args = parser.parse_args()
    if args.dataset == "table":
        print(table())
        return
    for lever in args.levers:
        for seed in args.seeds:
            if args.beams:
                result = rescore_with_beams(args.dataset, lever, args.epochs, seed, args.beams, args)
            else:
                result = run(args.dataset, lever, args.epochs, seed, args)
            print(json.dumps({k: result[k] for k in ("lever", "seed", "best_epoch", "valid", "seconds_per_epoch")}))


if __name__ == "__main__":
    main()

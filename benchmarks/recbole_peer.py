"""Peer run: RecBole 1.2.1's SASRec on the Amazon 2014 Beauty split of `benchmarks/quality.py beauty`.

RecBole needs its own virtual environment (newer numpy / pandas / setuptools break its imports), never the project's:

    python -m venv /tmp/recbole_venv
    /tmp/recbole_venv/bin/pip install torch==2.13.0 recbole==1.2.1 "setuptools<80" "numpy<2" "pandas<2.3" "scipy<1.14"
    /tmp/recbole_venv/bin/python benchmarks/recbole_peer.py --epochs 40

`Beauty.txt` (one chronological line per user) becomes a RecBole atomic file with the position as timestamp; RecBole's
leave-one-out (`LS: valid_and_test`, time order) then gives the same split as ours: the last item tests, the second
to last validates, the earlier prefixes train (RecBole turns every training prefix into one example). SASRec is
trained with the full-softmax CE loss and the same model size as our ID-only run; the best epoch by valid NDCG@10
is kept (early stop after `--stopping_step` epochs without improvement).

What RecBole 1.2.1 masks in its full ranking: for sequential models `FullSortEvalDataLoader.collate_fn` returns no
history index, so `Trainer._full_sort_batch_eval` only sets the padding column 0 to -inf: every catalog item is
ranked, the user's history included (our "all items" protocol). RecBole's own numbers are printed as they are; the
script also re-ranks the test users from the best model's scores with our rules (expected rank under random
tie-breaking, 95% percentile bootstrap over users) under both protocols, the history being the model's input
sequence (its most recent 50 items, as ours).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "amazon2014_beauty_ids" / "Beauty.txt"


def write_atomic(source: Path, folder: Path) -> Path:
    """`Beauty.txt` -> `<folder>/beauty/beauty.inter` (user, item, position as timestamp)."""
    out = folder / "beauty" / "beauty.inter"
    out.parent.mkdir(parents=True, exist_ok=True)
    with source.open() as lines, out.open("w") as inter:
        inter.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for line in lines:
            user, *items = line.split()
            inter.writelines(f"{user}\t{item}\t{position}\n" for position, item in enumerate(items))
    return out


def config_dict(args: argparse.Namespace) -> dict:
    return {
        "data_path": str(args.work_dir), "checkpoint_dir": str(args.work_dir / "saved"),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": 50,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "train_neg_sample_args": None, "loss_type": "CE",
        "hidden_size": args.hidden_size, "inner_size": 4 * args.hidden_size, "n_layers": args.layers, "n_heads": 1,
        "hidden_dropout_prob": args.dropout, "attn_dropout_prob": args.dropout, "hidden_act": "gelu",
        "epochs": args.epochs, "stopping_step": args.stopping_step, "train_batch_size": args.batch_size,
        "eval_batch_size": 2048, "learning_rate": 1e-3,
        "metrics": ["Recall", "NDCG", "MRR"], "topk": [10], "valid_metric": "NDCG@10",
        "seed": args.seed, "reproducibility": True, "device": "cpu", "use_gpu": False, "show_progress": False,
    }  # fmt: skip


def bootstrap(values: np.ndarray, samples: int = 1000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = np.array([values[rng.integers(0, len(values), len(values))].mean() for _ in range(samples)])
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


def metrics(ranks: np.ndarray) -> dict:
    hit = ranks <= 10
    per_user = {"hr@10": hit.astype(float), "ndcg@10": np.where(hit, 1 / np.log2(ranks + 1), 0.0), "mrr": 1 / ranks}
    return {
        k: {"value": float(v.mean()), **dict(zip(("ci_low", "ci_high"), bootstrap(v)))} for k, v in per_user.items()
    }


@torch.no_grad()
def test_ranks(model, test_data, item_num: int) -> dict[str, np.ndarray]:
    """Expected ranks of every test target over the whole catalog, with and without the history items."""
    model.eval()
    ranks = {"all items": [], "history excluded": []}
    for interaction, _, positive_u, positive_i in test_data:
        scores = model.full_sort_predict(interaction).view(-1, item_num)
        scores[:, 0] = -torch.inf
        history = interaction[model.ITEM_SEQ]
        for protocol in ranks:
            masked = scores.clone()
            if protocol == "history excluded":
                masked.scatter_(1, history, -torch.inf)  # padding 0 is already -inf
                masked[positive_u, positive_i] = scores[positive_u, positive_i]  # the target is never removed
            target = masked[positive_u, positive_i][:, None]
            higher, tied = (masked > target).sum(1), (masked == target).sum(1) - 1
            ranks[protocol].append((higher + 1 + tied / 2).double().numpy())
    return {protocol: np.concatenate(values) for protocol, values in ranks.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beauty", type=Path, default=DATA)
    parser.add_argument("--work_dir", type=Path, default=Path("/tmp/genrec_bench/recbole"))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--stopping_step", type=int, default=10)
    parser.add_argument("--hidden_size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model_file",
        type=Path,
        help="score this saved RecBole checkpoint (of a run stopped early) instead of training",
    )
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "recbole" / "sasrec-seed0.json"
    )
    args = parser.parse_args()

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_logger, init_seed

    write_atomic(args.beauty, args.work_dir)
    config = Config(model="SASRec", dataset="beauty", config_dict=config_dict(args))
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = SASRec(config, train_data.dataset).to(config["device"])
    trainer = Trainer(config, model)
    train_s = None
    if not args.model_file:
        start = time.perf_counter()
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        train_s = time.perf_counter() - start
    # The best epoch as RecBole saved it (this run's, or that of a run stopped by the time budget). RecBole's own
    # loader calls torch.load with the weights_only=True default of torch >= 2.6, which refuses its pickled
    # checkpoint, so the file this script's RecBole just wrote is read here instead.
    checkpoint = torch.load(args.model_file or trainer.saved_model_file, map_location="cpu", weights_only=False)
    best_valid, epochs = checkpoint["best_valid_score"], checkpoint["epoch"] + 1
    trainer.model.load_state_dict(checkpoint["state_dict"])
    trainer.model.load_other_parameter(checkpoint.get("other_parameter"))
    recbole_test = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    ours = {protocol: metrics(r) for protocol, r in test_ranks(trainer.model, test_data, dataset.item_num).items()}
    result = {
        "peer": "RecBole 1.2.1 SASRec (CE loss)", "config": config_dict(args) | {"work_dir": None},
        "users": dataset.user_num - 1, "items": dataset.item_num - 1, "interactions": len(dataset.inter_feat),
        "train_s": train_s, "best_epoch": epochs, "model_file": str(args.model_file) if args.model_file else None,
        "best_valid_ndcg@10": best_valid, "recbole_test": dict(recbole_test), "test": ours,
    }  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, default=float))
    print(
        json.dumps({k: result[k] for k in ("users", "items", "interactions", "train_s", "recbole_test")}, default=float)
    )
    for protocol, values in ours.items():
        cells = " | ".join(f"{m['value']:.4f} [{m['ci_low']:.4f}, {m['ci_high']:.4f}]" for m in values.values())
        minutes = f"{train_s / 60:.1f} min" if train_s else "see the training log"
        print(f"| beauty | RecBole SASRec (CE) | {protocol} | {cells} | {args.seed} | {minutes} |")


if __name__ == "__main__":
    main()

"""`scripts/train.py` / `genrec-train`: prepared data (or raw files) -> trained, evaluated, saved GenRec model.

Runs the same with `python`, `accelerate launch` and `torchrun`: the Trainer builds the one `Accelerator`.
"""

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser, TrainingArguments, set_seed

from ..configuration_genrec import FUSION_MODES, GenRecConfig
from ..encoders import DEFAULT_CLIP, ItemEncoder, ItemFeatures
from ..feature_cache import cached_item_features
from ..hub import METRICS_FILE, publish
from ..modeling_genrec import GenRecModel
from ..processing_genrec import GenRecProcessor
from .curves import TrainingCurvesCallback
from .evaluation import evaluation_report
from .sequences import SequenceCollator, eval_examples, item_counts, train_sequences
from .trainer import GenRecTrainer

logger = logging.getLogger("genrec_hf.train")


@dataclass
class DataArguments:
    data_dir: str | None = field(
        default=None, metadata={"help": "Folder written by scripts/prepare_data.py (splits/, items/, stats.json)."}
    )
    reviews: list[str] | None = field(
        default=None, metadata={"help": "Raw review files (.jsonl/.jsonl.gz, globs); prepared on the fly."}
    )
    meta: list[str] | None = field(default=None, metadata={"help": "Raw metadata files matching --reviews."})
    images_dir: str | None = field(default=None, metadata={"help": "Local item photos named <parent_asin>.<ext>."})
    kcore: int = field(default=5, metadata={"help": "Iterative k-core on users and items when preparing raw files."})
    split: str = field(default="leave_one_out", metadata={"help": "leave_one_out or timestamp."})
    synthetic: bool = field(
        default=False, metadata={"help": "Use the embedded SYNTHETIC sample when no data is given."}
    )


@dataclass
class ModelArguments:
    item_encoder: str = field(
        default=DEFAULT_CLIP,
        metadata={
            "help": "CLIP (Hub id or local folder), a text encoder (e.g. sentence-transformers/all-MiniLM-L6-v2), "
            "or 'none' for an ID-only model (with --fusion id)."
        },
    )
    item_encoder_type: str | None = field(default=None, metadata={"help": "clip or text; read from its config."})
    fusion: str = field(default="gate", metadata={"help": f"One of {FUSION_MODES}."})
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    max_seq_len: int = 50
    hidden_dropout_prob: float = 0.2
    attention_dropout_prob: float = 0.2
    id_dropout: float = 0.1
    content_gain_init: float = 0.02
    score_function: str = field(default="dot", metadata={"help": "dot (shared item table) or cosine."})
    scale_item_embeddings: bool = True
    position_order: str = field(default="recency", metadata={"help": "recency or absolute."})
    temperature: float = 0.07
    loss_negatives: str = field(default="full", metadata={"help": "full (whole catalog) or sampled (log-Q)."})
    num_sampled_negatives: int = 1024
    feature_cache_dir: str | None = field(
        default=None, metadata={"help": "Cache of item content features; defaults to <output_dir>/feature_cache."}
    )
    feature_batch_size: int = 64


@dataclass
class EvaluationArguments:
    exclude_history: bool = field(
        default=False, metadata={"help": "Remove history items from the ranking (the target is never removed)."}
    )
    bootstrap_samples: int = field(default=1000, metadata={"help": "Resamples of the 95%% bootstrap CIs."})


TRAINING_DEFAULTS = {
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "load_best_model_at_end": True,
    "metric_for_best_model": "ndcg@10",
    "greater_is_better": True,
    "save_total_limit": 2,
    "remove_unused_columns": False,
    "train_sampling_strategy": "group_by_length",
    "logging_steps": 10,
    "learning_rate": 1e-3,
    "num_train_epochs": 20,
    "per_device_train_batch_size": 128,
    "per_device_eval_batch_size": 256,
    "weight_decay": 0.0,
    "warmup_steps": 0,
    "dataloader_pin_memory": torch.accelerator.is_available(),  # without an accelerator, pinning only warns
}


def parse_arguments(
    argv: list[str] | None,
) -> tuple[DataArguments, ModelArguments, EvaluationArguments, TrainingArguments]:
    parser = HfArgumentParser((DataArguments, ModelArguments, EvaluationArguments, TrainingArguments))
    parser.set_defaults(**TRAINING_DEFAULTS)
    data_args, model_args, eval_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    if training_args.remove_unused_columns:
        raise ValueError("--remove_unused_columns must stay False: the collator reads item_ids and target_id")
    return data_args, model_args, eval_args, training_args


def load_data(data_args: DataArguments, output_dir: Path):
    from ..data import load_prepared, prepare_dataset
    from ..data.synthetic import write_synthetic_sample

    if data_args.data_dir:
        return load_prepared(data_args.data_dir)
    reviews, meta, images_dir = data_args.reviews, data_args.meta, data_args.images_dir
    if not reviews:
        if not data_args.synthetic:
            raise ValueError("give --data_dir, or --reviews and --meta, or --synthetic for the embedded sample")
        logger.warning("training on the embedded SYNTHETIC sample (not real Amazon data)")
        reviews, meta, images_dir = write_synthetic_sample(output_dir / "synthetic_raw")
        reviews, meta = [str(reviews)], [str(meta)]
    return prepare_dataset(
        reviews,
        meta,
        output_dir=output_dir / "data",
        images_dir=images_dir,
        kcore=data_args.kcore,
        split=data_args.split,
    )


def item_content(
    model_args: ModelArguments, items, output_dir: Path, training_args: TrainingArguments
) -> tuple[GenRecProcessor, ItemFeatures, dict]:
    """The processor, the cached content features of every item, and the encoder reference for the config."""
    vocab = items["parent_asin"]
    if model_args.item_encoder.lower() == "none":
        empty = torch.zeros(len(vocab), 0)
        features = ItemFeatures(empty, empty, torch.zeros(len(vocab), dtype=torch.bool))
        reference = {"item_encoder_name_or_path": None, "item_encoder_type": "text"}
        return GenRecProcessor.without_content(vocab, model_args.max_seq_len), features, reference
    encoder = ItemEncoder.from_pretrained(model_args.item_encoder, model_args.item_encoder_type)
    processor = encoder.build_processor(vocab, max_seq_len=model_args.max_seq_len)
    cache_dir = model_args.feature_cache_dir or output_dir / "feature_cache"
    with training_args.main_process_first(desc="item features"):
        features = cached_item_features(encoder, processor, items, cache_dir, model_args.feature_batch_size)
    reference = {"item_encoder_name_or_path": encoder.name_or_path, "item_encoder_type": encoder.encoder_type}
    return processor, features, reference


def train_main(argv: list[str] | None = None) -> dict:
    data_args, model_args, eval_args, training_args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO if training_args.should_log else logging.WARNING, stream=sys.stdout)
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    # The stock checkpoint pushes upload config and weights without the remote-code files, which leaves a Hub repo
    # that cannot be loaded; the finished model is published in one commit by `publish()` instead.
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False

    data = load_data(data_args, output_dir)
    items = data.items
    processor, features, encoder_reference = item_content(model_args, items, output_dir, training_args)
    train = train_sequences(data.splits["train"], processor)
    valid = eval_examples(data.splits["valid"], processor)
    test = eval_examples(data.splits["test"], processor)
    counts = item_counts(train, processor.num_items)

    config = GenRecConfig(
        num_items=processor.num_items,
        text_feature_dim=features.text_features.shape[1],
        image_feature_dim=features.image_features.shape[1],
        **encoder_reference,
        **{k: getattr(model_args, k) for k in MODEL_CONFIG_FIELDS},
    )
    model = GenRecModel(config)
    model.set_item_features(**features.as_dict())
    model.set_item_popularity(counts)

    trainer = GenRecTrainer(
        model=model,
        args=training_args,
        train_dataset=train,
        eval_dataset=valid,
        data_collator=SequenceCollator(),
        processing_class=processor,
        callbacks=[TrainingCurvesCallback()],
        exclude_history=eval_args.exclude_history,
    )
    train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    report = evaluation_report(trainer, valid, test, counts, eval_args.bootstrap_samples, training_args.seed)
    metrics = {
        "model": {
            "fusion": config.fusion,
            "item_encoder": config.item_encoder_name_or_path,
            "item_encoder_type": config.item_encoder_type,
        },
        "data": {"name": data.stats.get("name"), "split": data_args.split, "stats": data.stats},
        "protocol": {
            "ranking": "full catalog",
            "exclude_history": eval_args.exclude_history,
            "ties": "expected rank under random tie-breaking",
            "ci": f"95% percentile bootstrap over users ({eval_args.bootstrap_samples} resamples)",
        },
        **report,
        "training": {
            "epochs": training_args.num_train_epochs,
            "global_step": trainer.state.global_step,
            "train_runtime_s": train_result.metrics.get("train_runtime"),
            "seed": training_args.seed,
            "best_checkpoint": trainer.state.best_model_checkpoint,
        },
    }
    if trainer.is_world_process_zero():
        trainer.save_model(str(output_dir))
        (output_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        trainer.create_model_card()
        print(format_summary(metrics))
        if push_to_hub:
            commit = publish(
                output_dir,
                training_args.hub_model_id or output_dir.name,
                token=training_args.hub_token,
                private=training_args.hub_private_repo,
                revision=training_args.hub_revision,
            )
            print(f"published {commit.commit_url}")
    return metrics


MODEL_CONFIG_FIELDS = (
    "fusion",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "max_seq_len",
    "hidden_dropout_prob",
    "attention_dropout_prob",
    "id_dropout",
    "content_gain_init",
    "score_function",
    "scale_item_embeddings",
    "position_order",
    "temperature",
    "loss_negatives",
    "num_sampled_negatives",
)


def format_summary(metrics: dict) -> str:
    """A plain-text table of test metrics (with CIs) beside the popularity baseline."""
    rows = [f"{'metric':<10}{'GenRec (95% CI)':>30}{'popularity (95% CI)':>30}"]
    for key, value in metrics["test"].items():
        baseline = metrics["popularity"]["test"][key]
        rows.append(
            f"{key:<10}{value['value']:>10.4f} [{value['ci_low']:.4f}, {value['ci_high']:.4f}]"
            f"{baseline['value']:>10.4f} [{baseline['ci_low']:.4f}, {baseline['ci_high']:.4f}]"
        )
    users = metrics["test_warm"]["count"] + metrics["test_cold"]["count"]
    title = f"Test metrics ({metrics['data']['split']}, full-catalog ranking, {users} users)"
    return "\n".join([title, *rows])

"""`train(...)`: prepared data (or raw files) -> a trained GenRec model, its processor and its `EvaluationReport`.

```python
from genrec_hf.training import ModelArguments, train

result = train("data/beauty", output_dir="runs/beauty", model=ModelArguments(fusion="id", item_encoder="none"),
               training_args={"num_train_epochs": 5})
result.report.test["ndcg@10"].value
result.save()                        # model, processor and metrics.json in output_dir
```

`scripts/train.py` (`genrec_hf.commands.train`) parses the same arguments from the command line and calls this, so
both give the same model and numbers for the same arguments. It runs the same under `python`, `accelerate launch`
and `torchrun`: the Trainer builds the one `Accelerator`.
"""

import dataclasses
import importlib.metadata
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import EarlyStoppingCallback, TrainingArguments, set_seed

from .._atomic import STAGING_DIR, commit_staged, staging_folder
from ..configuration_genrec import GenRecConfig, choose_loss_negatives
from ..configuration_genrec_generative import QUANTIZED_TOWER_FIELDS, GenRecGenerativeConfig
from ..data import PreparedData, load_prepared, prepare_dataset
from ..data.hub_files import category_paths
from ..data.synthetic import write_synthetic_sample
from ..encoders import ItemEncoder, ItemFeatures
from ..evaluation import DataSummary, EvaluationReport, ModelSummary, TrainingSummary
from ..feature_cache import cached_item_features
from ..modeling_genrec import WHITENING_EPSILON, GenRecItemTower, GenRecModel
from ..modeling_genrec_generative import GenRecForSemanticIDGeneration
from ..processing_genrec import GenRecProcessor
from ..semantic_ids import SemanticIDs, quantization_inputs
from ..sequences import eval_examples, item_counts, train_sequences
from .arguments import TRAINING_DEFAULTS, DataArguments, EvaluationArguments, GenerativeArguments, ModelArguments
from .callbacks import TrainingCurvesCallback
from .checkpoints import resolve_checkpoint
from .collator import SemanticIDCollator, SequenceCollator
from .trainer import GenRecTrainer

logger = logging.getLogger("genrec_hf.train")


@dataclasses.dataclass
class TrainingResult:
    """What [`train`] returns: the trained (best) model, its processor, its report and the Trainer that ran."""

    model: GenRecModel | GenRecForSemanticIDGeneration
    processor: GenRecProcessor
    report: EvaluationReport
    trainer: GenRecTrainer

    def save(self, output_dir: str | os.PathLike | None = None) -> Path:
        """Saves model and processor (`save_pretrained`) and `metrics.json` to `output_dir` (default: the run's);
        with `push_to_hub` in the training arguments, then publishes that folder (`GenRecTrainer.publish_folder`).

        Call it on every process: the Trainer gathers sharded weights, and only the main process writes.
        """
        output_dir = Path(output_dir or self.trainer.args.output_dir)
        # Staged, then moved into place: a kill never leaves a half-written model (see genrec_hf._atomic).
        staging = output_dir / STAGING_DIR
        if self.trainer.is_world_process_zero():
            staging_folder(output_dir)
        self.trainer.accelerator.wait_for_everyone()
        self.trainer.save_model(str(staging), _internal_call=True)  # not the stock push: the folder is not complete
        self.trainer.accelerator.wait_for_everyone()
        if self.trainer.is_world_process_zero():
            self.report.save(staging)
            commit_staged(output_dir)
            if self.trainer.args.push_to_hub:
                self.trainer.publish_folder(output_dir)
        return output_dir


def _as_arguments(kind: type, value: Any) -> Any:
    """`value` as a `kind` dataclass: as given, built from a mapping of its fields, or the defaults for `None`."""
    if isinstance(value, kind):
        return value
    return kind(**(value or {}))


def training_arguments(output_dir: str | os.PathLike | None, overrides: Mapping[str, Any] | None) -> TrainingArguments:
    """`TrainingArguments` of a GenRec run: `TRAINING_DEFAULTS`, then `overrides`, writing to `output_dir`."""
    if output_dir is None:
        raise ValueError("give output_dir, or training_args as a TrainingArguments with its output_dir")
    return TrainingArguments(**{**TRAINING_DEFAULTS, "output_dir": str(output_dir), **(overrides or {})})


def load_data(data_args: DataArguments, output_dir: Path) -> PreparedData:
    """Prepared splits and items: from `data_dir`, prepared from raw files or Hub categories, or the embedded
    synthetic sample."""
    if data_args.data_dir:
        return load_prepared(data_args.data_dir)
    split = data_args.split if data_args.official_split else None
    hub_reviews, hub_meta = category_paths(data_args.categories or [], split)
    reviews, meta = [*(data_args.reviews or []), *hub_reviews], [*(data_args.meta or []), *hub_meta]
    images_dir = data_args.images_dir
    if not reviews:
        if not data_args.synthetic:
            raise ValueError(
                "give --data_dir, --reviews and --meta, --categories, or --synthetic for the embedded sample"
            )
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


def history_length(model_args: ModelArguments) -> int:
    """Most recent history items the model reads: `--max_seq_len`, else the head's config default."""
    if model_args.max_seq_len is not None:
        return model_args.max_seq_len
    return (GenRecGenerativeConfig if model_args.head == "generative" else GenRecConfig)().max_seq_len


def item_content(
    model_args: ModelArguments, items, output_dir: Path, training_args: TrainingArguments
) -> tuple[GenRecProcessor, ItemFeatures, dict]:
    """The processor, the cached content features of every item, and the encoder reference for the config."""
    vocab = items["parent_asin"]
    max_seq_len = history_length(model_args)
    if model_args.item_encoder.lower() == "none":
        if model_args.head == "generative":
            raise ValueError("--head generative codes items from their content: give an --item_encoder, not 'none'")
        empty = torch.zeros(len(vocab), 0)
        features = ItemFeatures(empty, empty, torch.zeros(len(vocab), dtype=torch.bool))
        reference = {"item_encoder_name_or_path": None, "item_encoder_type": "text"}
        return GenRecProcessor.without_content(vocab, max_seq_len), features, reference
    encoder = ItemEncoder.from_pretrained(
        model_args.item_encoder, model_args.item_encoder_type, dtype=model_args.item_encoder_dtype
    )
    encoder.model.to(training_args.device)  # this process's accelerator (`accelerate launch`, torchrun) or the CPU
    processor = encoder.build_processor(vocab, max_seq_len=max_seq_len, text_max_length=model_args.item_text_max_length)
    cache_dir = model_args.feature_cache_dir or output_dir / "feature_cache"
    # Every process encodes its share of the items (genrec_hf.sharded_encoding) and returns all of them.
    features = cached_item_features(encoder, processor, items, cache_dir, model_args.feature_batch_size)
    reference = {"item_encoder_name_or_path": encoder.name_or_path, "item_encoder_type": encoder.encoder_type}
    return processor, features, reference


def train(
    data: DataArguments | Mapping[str, Any] | str | os.PathLike,
    output_dir: str | os.PathLike | None = None,
    *,
    model: ModelArguments | Mapping[str, Any] | None = None,
    generative: GenerativeArguments | Mapping[str, Any] | None = None,
    evaluation: EvaluationArguments | Mapping[str, Any] | None = None,
    training_args: TrainingArguments | Mapping[str, Any] | None = None,
) -> TrainingResult:
    """Trains a GenRec model with the Trainer and evaluates its best checkpoint on valid and test.

    Args:
        data: a prepared-data folder (`scripts/prepare_data.py`), or `DataArguments` (or their fields as a dict) for
            raw files or the embedded synthetic sample.
        output_dir: where checkpoints, the feature cache and the training curves go; not needed when
            `training_args` is a `TrainingArguments`.
        model: `ModelArguments` (or their fields as a dict); defaults to `GenRecConfig`'s defaults with CLIP.
            `head="generative"` trains a [`GenRecForSemanticIDGeneration`] instead, sized by `generative`.
        generative: `GenerativeArguments` (or their fields as a dict) of the generative head.
        evaluation: `EvaluationArguments` (or their fields as a dict): the ranking protocol and bootstrap size.
        training_args: a `TrainingArguments` used as it is, or a dict of overrides of `TRAINING_DEFAULTS`.

    Returns:
        A [`TrainingResult`]; `result.save()` writes the model folder with its `metrics.json`. The test metrics are
        logged to the `report_to` trackers and saved with `trainer.save_metrics("test", ...)`. With `push_to_hub`,
        checkpoints are published as `hub_strategy` asks and `result.save()` publishes the final folder, each push
        through `genrec_hf.hub.publish` (remote code, processor and card in every commit); `hub_token` is used for
        the pushes and kept out of the checkpoints.
    """
    if isinstance(data, (str, os.PathLike)):
        data = DataArguments(data_dir=str(data))
    data_args = _as_arguments(DataArguments, data)
    model_args, eval_args = _as_arguments(ModelArguments, model), _as_arguments(EvaluationArguments, evaluation)
    if not isinstance(training_args, TrainingArguments):
        training_args = training_arguments(output_dir, training_args)
    elif output_dir is not None and Path(output_dir) != Path(training_args.output_dir):
        raise ValueError(f"output_dir {output_dir} differs from training_args.output_dir {training_args.output_dir}")
    if training_args.remove_unused_columns:
        raise ValueError("remove_unused_columns must stay False: the collator reads item_ids and target_id")
    # The Trainer pickles its arguments into every checkpoint (training_args.bin): the token goes to the Trainer only.
    hub_token, training_args.hub_token = training_args.hub_token, None
    set_seed(training_args.seed)
    output_dir = Path(training_args.output_dir)
    resume_from = resolve_checkpoint(training_args.resume_from_checkpoint, output_dir)

    prepared = load_data(data_args, output_dir)
    processor, features, encoder_reference = item_content(model_args, prepared.items, output_dir, training_args)
    train_set = train_sequences(prepared.splits["train"], processor)
    valid = eval_examples(prepared.splits["valid"], processor)
    test = eval_examples(prepared.splits["test"], processor)
    if not len(train_set):
        raise ValueError(f"the training split has no sequence of two or more items ({processor.num_items} items)")
    counts = item_counts(train_set, processor.num_items)

    loss_choice = None
    if model_args.head == "generative":
        genrec, collator = generative_model(
            _as_arguments(GenerativeArguments, generative),
            features,
            encoder_reference,
            processor,
            counts,
            training_args,
        )
    else:
        config = GenRecConfig(
            num_items=processor.num_items,
            text_feature_dim=features.text_features.shape[1],
            image_feature_dim=features.image_features.shape[1],
            **encoder_reference,
            **model_args.config_kwargs(),
        )
        loss_choice = describe_loss_choice(model_args.loss_negatives, config)
        logger.info("training loss: %s", loss_choice)
        genrec, collator = GenRecModel(config), SequenceCollator()
        genrec.set_item_features(**features.as_dict())
        genrec.fit_content_whitening()
        genrec.set_item_popularity(counts)

    callbacks = [TrainingCurvesCallback()]
    if eval_args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=eval_args.early_stopping_patience))
    trainer = GenRecTrainer(
        model=genrec,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=validation_subset(valid, eval_args.max_eval_samples, training_args.seed),
        data_collator=collator,
        processing_class=processor,
        callbacks=callbacks,
        exclude_history=eval_args.exclude_history,
        bootstrap_samples=eval_args.bootstrap_samples,
        hub_token=hub_token,
        weight_averaging_epochs=eval_args.weight_averaging_epochs,
    )
    train_output = trainer.train(resume_from_checkpoint=resume_from)
    report = trainer.evaluation_report(valid, test, counts)
    test_metrics = {f"test_{name}": estimate.value for name, estimate in report.test.items()}
    trainer.log(dict(test_metrics))  # to the `report_to` trackers (log adds the epoch to the dict it is given)
    trainer.save_metrics("test", test_metrics)  # test_results.json and all_results.json in output_dir
    trainer.save_state()  # trainer_state.json in output_dir: every epoch's log, which rotated checkpoints lose
    report = dataclasses.replace(
        report,
        model=model_summary(genrec, loss_choice),
        data=DataSummary(name=prepared.stats.get("name"), split=data_args.split, stats=prepared.stats),
        training=TrainingSummary(
            epochs=training_args.num_train_epochs,
            global_step=trainer.state.global_step,
            train_runtime_s=train_output.metrics.get("train_runtime"),
            seed=training_args.seed,
            best_checkpoint=trainer.state.best_model_checkpoint,
            hyperparameters=training_hyperparameters(
                training_args, trainer.weight_averaging_epochs, eval_args.early_stopping_patience
            ),
            framework_versions=framework_versions(),
        ),
    )
    return TrainingResult(trainer.model, processor, report, trainer)


def training_hyperparameters(
    args: TrainingArguments, weight_averaging_epochs: float = 0.0, early_stopping_patience: int | None = None
) -> dict[str, Any]:
    """The optimisation settings of a run, as the model card lists them (the model's own sizes are in its config,
    the seed in the `TrainingSummary`)."""
    return {
        "learning_rate": args.learning_rate,
        "train_batch_size": args.per_device_train_batch_size,
        "eval_batch_size": args.per_device_eval_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "num_processes": args.world_size,
        "total_train_batch_size": args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
        "optimizer": str(getattr(args.optim, "value", args.optim)),
        "weight_decay": args.weight_decay,
        "lr_scheduler_type": str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
        "warmup_steps": args.warmup_steps,
        "num_epochs": args.num_train_epochs,
        "max_steps": args.max_steps,
        "max_grad_norm": args.max_grad_norm,
        "mixed_precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "no",
        "weight_averaging_epochs": weight_averaging_epochs,
        "early_stopping_patience": early_stopping_patience,
    }


def framework_versions() -> dict[str, str]:
    """Versions of genrec_hf and the libraries that train and serve it."""
    from .. import __version__

    libraries = ("transformers", "torch", "datasets", "accelerate", "huggingface_hub", "safetensors")
    return {"genrec_hf": __version__, **{name: importlib.metadata.version(name) for name in libraries}}


def validation_subset(valid: Dataset, max_eval_samples: int | None, seed: int) -> Dataset:
    """The valid examples that select the checkpoint: all, or `max_eval_samples` of them drawn with `seed`."""
    if max_eval_samples is None or max_eval_samples >= len(valid):
        return valid
    return valid.shuffle(seed=seed).select(range(max_eval_samples))


def generative_model(
    arguments: GenerativeArguments,
    features: ItemFeatures,
    encoder_reference: dict,
    processor: GenRecProcessor,
    counts: torch.Tensor,
    training_args: TrainingArguments,
) -> tuple[GenRecForSemanticIDGeneration, SemanticIDCollator]:
    """A new generative model whose items are coded by residual k-means over their content (or over a dense model's
    item vectors, `arguments.semantic_ids_from`), and its collator."""
    dense_tower, tower_fields = None, None
    if arguments.semantic_ids_from:
        vectors, dense_tower, tower_fields = dense_item_vectors(
            arguments.semantic_ids_from, processor, encoder_reference
        )
    else:
        vectors = quantization_inputs(features.text_features, features.image_features, features.image_mask)
    semantic_ids = SemanticIDs.fit(
        vectors,
        num_levels=arguments.num_code_levels,
        codebook_size=arguments.codebook_size,
        iterations=arguments.kmeans_iterations,
        seed=training_args.seed,
    )
    logger.info("semantic IDs: %s", semantic_ids.stats)
    config = GenRecGenerativeConfig(
        num_items=processor.num_items,
        content_dim=vectors.shape[1],
        text_feature_dim=features.text_features.shape[1],
        image_feature_dim=features.image_features.shape[1],
        max_seq_len=processor.max_seq_len,
        quantized_item_tower=tower_fields,
        semantic_id_stats=semantic_ids.stats,
        **encoder_reference,
        **arguments.config_kwargs(),
    )
    model = GenRecForSemanticIDGeneration(config)
    model.set_semantic_ids(semantic_ids.codes, semantic_ids.codebooks, vectors)
    if dense_tower is not None:
        model.set_item_tower(dense_tower)
    model.set_item_popularity(counts)
    item_tokens = model.item_tokens(torch.arange(processor.num_items + 1)).cpu()
    return model, SemanticIDCollator(item_tokens)


def dense_item_vectors(
    name_or_path: str, processor: GenRecProcessor, encoder_reference: dict
) -> tuple[torch.Tensor, GenRecItemTower, dict[str, Any]]:
    """The unit-length item vectors of a trained dense model of the same catalog and item encoder (content and
    learned IDs fused), its item tower, and the config fields that rebuild that tower."""
    dense = GenRecModel.from_pretrained(name_or_path)
    if GenRecProcessor.from_pretrained(name_or_path).item_vocab != processor.item_vocab:
        raise ValueError(f"semantic_ids_from: {name_or_path} was trained on another catalog (its items differ)")
    if dense.config.fusion == "id":
        raise ValueError(
            f"semantic_ids_from: {name_or_path} is ID-only; the model must embed content, which codes items added later"
        )
    encoder = dense.config.item_encoder_name_or_path
    if encoder != encoder_reference["item_encoder_name_or_path"]:
        raise ValueError(
            f"semantic_ids_from: {name_or_path} embeds items with {encoder}, this run with "
            f"{encoder_reference['item_encoder_name_or_path']}: give the same --item_encoder"
        )
    with torch.no_grad():
        vectors = F.normalize(dense.catalog_embeddings()[1:].float(), dim=1)
    return vectors, dense.item_tower, {name: getattr(dense.config, name) for name in QUANTIZED_TOWER_FIELDS}


def describe_loss_choice(requested: str, config: GenRecConfig) -> str:
    """Which negatives the dense loss of `config` uses and why: chosen by the catalog size for `requested="auto"`
    (`choose_loss_negatives`), else as set."""
    if requested == "auto":
        return choose_loss_negatives(config.num_items)[1]
    return f"{config.loss_negatives} softmax, set explicitly"


def model_summary(model: GenRecModel | GenRecForSemanticIDGeneration, loss_choice: str | None = None) -> ModelSummary:
    """The report's description of a trained model of either head (`loss_choice`: the dense loss and why)."""
    config = model.config
    if isinstance(model, GenRecForSemanticIDGeneration):
        tower = config.quantized_item_tower
        quantized = f"item vectors of a dense GenRec model (fusion {tower['fusion']})" if tower else "content features"
        return ModelSummary(
            fusion="semantic_ids",
            item_encoder=config.item_encoder_name_or_path,
            item_encoder_type=config.item_encoder_type,
            head="generative",
            semantic_ids={**(config.semantic_id_stats or {}), "quantized": quantized},
        )
    whitened = model.item_tower.content_whitened
    return ModelSummary(
        fusion=config.fusion,
        item_encoder=config.item_encoder_name_or_path,
        item_encoder_type=config.item_encoder_type,
        loss_choice=loss_choice,
        content_whitened=whitened if config.fusion != "id" else None,
        content_whitening_epsilon=WHITENING_EPSILON if whitened else None,
    )


__all__ = ["TrainingResult", "load_data", "train", "training_arguments"]

"""`genrec-train` / `scripts/train.py`: prepared data (or raw files) -> trained, evaluated, saved GenRec model.

Writes the model folder (`save_pretrained` model and processor), `metrics.json`, `training_curves.png` and the model
card (`README.md`), prints the test summary, and with `--push_to_hub` publishes the checkpoints as `--hub_strategy`
asks and the finished folder, each in one commit through `genrec_hf.hub.publish` (see `GenRecTrainer`). Runs the
same with `python`, `accelerate launch` and `torchrun`.
"""

import logging
import sys
from pathlib import Path

from transformers import TrainingArguments

from ..hub import build_model_card
from ..training import (
    TRAINING_DEFAULTS,
    DataArguments,
    EvaluationArguments,
    GenerativeArguments,
    ModelArguments,
    train,
)
from ._cli import CommandParser, check_data_sources, check_item_encoder


def parse_arguments(
    argv: list[str] | None,
) -> tuple[DataArguments, ModelArguments, GenerativeArguments, EvaluationArguments, TrainingArguments]:
    """The five argument groups, checked before any work: a bad flag exits with one line on stderr (status 2)."""
    parser = CommandParser((DataArguments, ModelArguments, GenerativeArguments, EvaluationArguments, TrainingArguments))
    parser.set_defaults(**TRAINING_DEFAULTS)
    try:
        data_args, model_args, generative_args, eval_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    except ValueError as error:  # TrainingArguments' own checks (e.g. --load_best_model_at_end without eval)
        parser.error(str(error).strip().splitlines()[0])
    if data_args.data_dir and not (Path(data_args.data_dir) / "stats.json").is_file():
        parser.error(
            f"--data_dir {data_args.data_dir}: not a folder written by scripts/prepare_data.py (no stats.json)"
        )
    if not (data_args.data_dir or data_args.reviews or data_args.categories or data_args.synthetic):
        parser.error("give --data_dir, --reviews and --meta, --categories, or --synthetic for the embedded sample")
    check_data_sources(parser, data_args)
    if model_args.item_encoder.lower() == "none":
        if model_args.head == "generative":
            parser.error("--head generative codes items from their content: give an --item_encoder, not 'none'")
        if model_args.fusion != "id":
            parser.error("--item_encoder none (no item content) needs --fusion id")
    else:
        check_item_encoder(parser, model_args.item_encoder)
    return data_args, model_args, generative_args, eval_args, training_args


def main(argv: list[str] | None = None) -> dict:
    """Trains, saves and reports; returns the `metrics.json` content."""
    data_args, model_args, generative_args, eval_args, training_args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO if training_args.should_log else logging.WARNING, stream=sys.stdout)
    passive = training_args.log_level == "passive" and training_args.should_log  # the default: progress notes
    logging.getLogger("genrec_hf").setLevel(logging.INFO if passive else training_args.get_process_log_level())
    try:
        result = train(
            data_args, model=model_args, generative=generative_args, evaluation=eval_args, training_args=training_args
        )
    except ValueError as error:  # bad data or a damaged checkpoint: the message names it, no traceback
        raise SystemExit(f"train failed: {error}") from None
    output_dir = result.save()
    if result.trainer.is_world_process_zero():
        card = build_model_card(result.model, result.processor, result.report, repo_id=training_args.hub_model_id)
        card.save(output_dir / "README.md")
        print(result.report.format_summary())
    return result.report.to_dict()


__all__ = ["main", "parse_arguments"]

"""`genrec-train` / `scripts/train.py`: prepared data (or raw files) -> trained, evaluated, saved GenRec model.

Writes the model folder (`save_pretrained` model and processor), `metrics.json`, `training_curves.png` and the model
card (`README.md`), prints the test summary, and with `--push_to_hub` publishes the folder in one commit. Runs the
same with `python`, `accelerate launch` and `torchrun`.
"""

import logging
import sys

from transformers import HfArgumentParser, TrainingArguments

from ..hub import build_model_card, publish
from ..training import (
    TRAINING_DEFAULTS,
    DataArguments,
    EvaluationArguments,
    GenerativeArguments,
    ModelArguments,
    train,
)


def parse_arguments(
    argv: list[str] | None,
) -> tuple[DataArguments, ModelArguments, GenerativeArguments, EvaluationArguments, TrainingArguments]:
    parser = HfArgumentParser(
        (DataArguments, ModelArguments, GenerativeArguments, EvaluationArguments, TrainingArguments)
    )
    parser.set_defaults(**TRAINING_DEFAULTS)
    return parser.parse_args_into_dataclasses(args=argv)


def main(argv: list[str] | None = None) -> dict:
    """Trains, saves and reports; returns the `metrics.json` content."""
    data_args, model_args, generative_args, eval_args, training_args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO if training_args.should_log else logging.WARNING, stream=sys.stdout)
    # The Trainer's pushes upload config and weights without the remote-code files, which leaves a Hub repo that
    # cannot be loaded; the finished model is published in one commit by `publish()` instead.
    push_to_hub, training_args.push_to_hub = training_args.push_to_hub, False
    # The Trainer pickles its arguments into every checkpoint (training_args.bin): the token stays out of them.
    hub_token, training_args.hub_token = training_args.hub_token, None

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
        if push_to_hub:
            commit = publish(
                output_dir,
                training_args.hub_model_id or output_dir.name,
                token=hub_token,
                private=training_args.hub_private_repo,
                revision=training_args.hub_revision,
            )
            print(f"published {commit.commit_url}")
    return result.report.to_dict()


__all__ = ["main", "parse_arguments"]

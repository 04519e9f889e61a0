"""Trainer callbacks: training curves (loss and validation ranking metrics against the global step, from
`log_history`)."""

import os
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments


def _series(log_history: list[dict], key: str) -> tuple[list[int], list[float]]:
    """Steps and values of the rows that log `key`."""
    rows = [row for row in log_history if key in row]
    return [row["step"] for row in rows], [row[key] for row in rows]


def plot_training_curves(
    log_history: list[dict],
    path: str,
    metric_keys: Sequence[str] = ("eval_ndcg@10", "eval_hr@10"),
) -> None:
    """Save a two-panel PNG: training `loss` (left) and the `metric_keys` validation metrics (right) per step.

    `log_history` is `TrainerState.log_history`; a panel whose keys are never logged says so instead of a curve.
    """
    figure = Figure(figsize=(11, 4), layout="tight")
    FigureCanvasAgg(figure)  # renders with Agg without touching pyplot's global backend
    loss_axis, metric_axis = figure.subplots(1, 2)
    for axis, keys, title in ((loss_axis, ["loss"], "Training loss"), (metric_axis, metric_keys, "Validation")):
        for key in keys:
            steps, values = _series(log_history, key)
            if steps:
                axis.plot(steps, values, marker=".", label=key)
        if axis.lines:
            axis.legend()
        else:
            axis.text(0.5, 0.5, "not logged", ha="center", va="center", transform=axis.transAxes)
        axis.set(title=title, xlabel="step")
        axis.grid(alpha=0.3)
    figure.savefig(path, dpi=120)


class TrainingCurvesCallback(TrainerCallback):
    """Writes `training_curves.png` into `args.output_dir` when training ends (on the main process only)."""

    def __init__(self, metric_keys: Sequence[str] = ("eval_ndcg@10", "eval_hr@10")):
        self.metric_keys = tuple(metric_keys)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs) -> None:
        if state.is_world_process_zero:
            os.makedirs(args.output_dir, exist_ok=True)
            plot_training_curves(
                state.log_history, os.path.join(args.output_dir, "training_curves.png"), self.metric_keys
            )

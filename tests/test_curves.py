"""Training curves are written as a PNG, from real-looking and from incomplete log histories."""

from types import SimpleNamespace

import pytest
from transformers import TrainerState

from genrec_hf.training.callbacks import TrainingCurvesCallback, plot_training_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

LOG_HISTORY = [
    {"loss": 6.21, "grad_norm": 3.1, "learning_rate": 1e-3, "epoch": 0.5, "step": 10},
    {"loss": 5.40, "grad_norm": 2.4, "learning_rate": 9e-4, "epoch": 1.0, "step": 20},
    {"eval_loss": 5.2, "eval_hr@10": 0.08, "eval_ndcg@10": 0.04, "eval_mrr": 0.03, "epoch": 1.0, "step": 20},
    {"loss": 4.90, "grad_norm": 2.0, "learning_rate": 5e-4, "epoch": 1.5, "step": 30},
    {"loss": 4.62, "grad_norm": 1.7, "learning_rate": 1e-4, "epoch": 2.0, "step": 40},
    {"eval_loss": 4.8, "eval_hr@10": 0.12, "eval_ndcg@10": 0.06, "eval_mrr": 0.05, "epoch": 2.0, "step": 40},
    {"train_runtime": 12.3, "train_loss": 5.3, "epoch": 2.0, "step": 40},
]


def assert_png(path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 1000


@pytest.mark.parametrize(
    "history",
    [LOG_HISTORY, [row for row in LOG_HISTORY if "eval_loss" not in row], [LOG_HISTORY[2]], []],
    ids=["full", "no-eval", "no-loss", "empty"],
)
def test_plot_training_curves_writes_png(tmp_path, history):
    path = tmp_path / "curves.png"
    plot_training_curves(history, str(path))
    assert_png(path)


def test_callback_writes_on_main_process_only(tmp_path):
    callback = TrainingCurvesCallback()
    for is_main, output_dir in ((True, tmp_path / "main"), (False, tmp_path / "other")):
        state = TrainerState(log_history=LOG_HISTORY, is_world_process_zero=is_main)
        callback.on_train_end(SimpleNamespace(output_dir=str(output_dir)), state, control=None)
    assert_png(tmp_path / "main" / "training_curves.png")
    assert not (tmp_path / "other").exists()

"""Training: the arguments of a run, the collator, `GenRecTrainer` with its weight averaging, its callbacks and
`train(...)`.

Training reads data, the model and evaluation; it knows nothing of inference or the Hub.
"""

from .arguments import TRAINING_DEFAULTS, DataArguments, EvaluationArguments, GenerativeArguments, ModelArguments
from .callbacks import TrainingCurvesCallback, plot_training_curves
from .collator import SemanticIDCollator, SequenceCollator
from .run import TrainingResult, train
from .trainer import GenRecTrainer

__all__ = [
    "TRAINING_DEFAULTS",
    "DataArguments",
    "EvaluationArguments",
    "GenRecTrainer",
    "GenerativeArguments",
    "ModelArguments",
    "SemanticIDCollator",
    "SequenceCollator",
    "TrainingCurvesCallback",
    "TrainingResult",
    "plot_training_curves",
    "train",
]

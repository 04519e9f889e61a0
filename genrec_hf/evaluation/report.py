"""`EvaluationReport`: the typed content of a run's `metrics.json`, read by the CLI summary, the model card and the
benchmarks.

`EvaluationReport.from_dict(d).to_dict() == d` for every `metrics.json` that `scripts/train.py` writes (and for the
older ones under `benchmarks/results/`): sections and metrics keep their order, numbers are stored as they came.
"""

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from .._atomic import atomic_write_text

METRICS_FILE = "metrics.json"
_Record = TypeVar("_Record", bound="_Section")


@dataclass(frozen=True)
class Estimate:
    """A metric's value over the users of a split, with its bootstrap confidence interval."""

    value: float
    ci_low: float
    ci_high: float


def estimates(section: Mapping[str, Mapping[str, float]]) -> dict[str, Estimate]:
    """`{"hr@10": {"value", "ci_low", "ci_high"}, ...}` (as `metrics_with_ci` returns it) as `Estimate`s."""
    return {name: Estimate(**entry) for name, entry in section.items()}


def _plain(section: Mapping[str, Estimate]) -> dict[str, dict[str, float]]:
    return {name: asdict(estimate) for name, estimate in section.items()}


class _Section:
    """A flat record stored as a JSON object with the dataclass's fields as keys. Fields added later that are `None`
    (`_left_out_when_none`) are left out, so older files read and write back unchanged."""

    _left_out_when_none: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in asdict(self).items()
            if not (value is None and name in self._left_out_when_none)
        }

    @classmethod
    def from_dict(cls: type[_Record], data: Mapping[str, Any]) -> _Record:
        return cls(**data)


@dataclass(kw_only=True)
class ModelSummary(_Section):
    """What was trained: the fusion mode and the item encoder that produced the content features; for the generative
    head (`head="generative"`, absent for the dense head) the fusion is `"semantic_ids"` and `semantic_ids` holds
    what was quantized (`quantized`) and how it went (collision rate, codebook usage, time). `loss_choice` says which
    negatives the dense head's loss used and why (e.g. chosen by the catalog size under `loss_negatives="auto"`);
    `content_whitened` whether a dense model with content whitened its content features before projecting them, and
    `content_whitening_epsilon` with what strength (`FeatureWhitening.fit`)."""

    fusion: str
    item_encoder: str | None
    item_encoder_type: str
    head: str | None = None
    semantic_ids: dict[str, Any] | None = None
    loss_choice: str | None = None
    content_whitened: bool | None = None
    content_whitening_epsilon: float | None = None

    _left_out_when_none = ("head", "semantic_ids", "loss_choice", "content_whitened", "content_whitening_epsilon")


@dataclass(kw_only=True)
class DataSummary(_Section):
    """The dataset: its name, the split protocol and the statistics the data layer recorded (`stats.json`)."""

    name: str | None
    split: str
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class EvaluationProtocol(_Section):
    """How the numbers were computed; every number of a report is meant under this protocol."""

    ranking: str = "full catalog"
    exclude_history: bool
    ties: str = "expected rank under random tie-breaking"
    ci: str

    @property
    def name(self) -> str:
        """`"history excluded"` (each user's own items removed from the ranking) or `"all items"`."""
        return "history excluded" if self.exclude_history else "all items"

    @property
    def description(self) -> str:
        """How items were ranked, and `name`: e.g. "full-catalog ranking, history excluded"."""
        ranking = "full-catalog ranking" if self.ranking == "full catalog" else self.ranking
        return f"{ranking}, {self.name}"

    @classmethod
    def full_ranking(
        cls, exclude_history: bool, bootstrap_samples: int, num_beams: int | None = None
    ) -> "EvaluationProtocol":
        """The protocol of [`RankingEvaluator`]: full-catalog ranks (for a generative model: the position in its beam
        list, items outside the beams ranked last), 95% percentile bootstrap CIs over users."""
        ci = f"95% percentile bootstrap over users ({bootstrap_samples} resamples)"
        if num_beams is None:
            return cls(exclude_history=exclude_history, ci=ci)
        ranking = f"beam search over catalog items ({num_beams} beams; items outside the beams rank last)"
        return cls(ranking=ranking, exclude_history=exclude_history, ci=ci)


@dataclass(kw_only=True)
class TrainingSummary(_Section):
    """The training run behind the model: schedule length, steps, time, seed and the checkpoint kept, with the
    optimisation hyper-parameters (learning rate, batch sizes, schedule) and the versions of the libraries that ran
    it (left out of older reports)."""

    epochs: float
    global_step: int
    train_runtime_s: float | None
    seed: int
    best_checkpoint: str | None = None
    hyperparameters: dict[str, Any] | None = None
    framework_versions: dict[str, str] | None = None

    _left_out_when_none = ("hyperparameters", "framework_versions")


@dataclass
class GroupMetrics:
    """Test metrics of a group of users (warm or cold targets) and its size; `metrics` is empty when `count == 0`.

    Stored flat: `{"count": 184, "hr@5": {...}, ...}`.
    """

    count: int
    metrics: dict[str, Estimate] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, **_plain(self.metrics)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GroupMetrics":
        return cls(data["count"], estimates({name: entry for name, entry in data.items() if name != "count"}))


@dataclass
class BaselineMetrics:
    """A baseline scored on the same examples under the same protocol: valid means and test estimates."""

    valid: dict[str, float]
    test: dict[str, Estimate]

    def to_dict(self) -> dict[str, Any]:
        return {"valid": dict(self.valid), "test": _plain(self.test)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BaselineMetrics":
        return cls(dict(data["valid"]), estimates(data["test"]))


@dataclass(kw_only=True)
class EvaluationReport:
    """Everything a run's `metrics.json` holds.

    Args:
        valid (`dict[str, float]`): Validation `hr@K`, `ndcg@K` and `mrr` of the model.
        test (`dict[str, Estimate]`): The same on test, with 95% confidence intervals.
        test_warm, test_cold (`GroupMetrics`): Test split by whether the target item occurs in training.
        popularity (`BaselineMetrics`): The popularity baseline on valid and test.
        protocol (`EvaluationProtocol`, *optional*): How the numbers were computed.
        model, data, training (*optional*): The run behind the numbers; absent from evaluation-only reports.
        other_protocol (`EvaluationReport`, *optional*): The same model's numbers under the other ranking protocol
            (history excluded or all items), from the same scores: what a comparison with papers of that protocol
            reads. Evaluation-only (no model, data, training); absent from older reports.
    """

    model: ModelSummary | None = None
    data: DataSummary | None = None
    protocol: EvaluationProtocol | None = None
    valid: dict[str, float]
    test: dict[str, Estimate]
    test_warm: GroupMetrics
    test_cold: GroupMetrics
    popularity: BaselineMetrics
    training: TrainingSummary | None = None
    other_protocol: "EvaluationReport | None" = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of `metrics.json` (sections that are `None` are left out)."""
        result = {}
        for section in fields(self):
            value = getattr(self, section.name)
            if value is None:
                continue
            if section.name == "valid":
                result["valid"] = dict(value)
            elif section.name == "test":
                result["test"] = _plain(value)
            else:
                result[section.name] = value.to_dict()
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EvaluationReport":
        unknown = set(data) - {section.name for section in fields(cls)}
        if unknown:
            raise ValueError(f"not an evaluation report: unknown sections {sorted(unknown)}")
        runs = {"model": ModelSummary, "data": DataSummary, "protocol": EvaluationProtocol, "training": TrainingSummary,
                "other_protocol": cls}  # fmt: skip
        return cls(
            **{name: kind.from_dict(data[name]) for name, kind in runs.items() if data.get(name) is not None},
            valid=dict(data["valid"]),
            test=estimates(data["test"]),
            test_warm=GroupMetrics.from_dict(data["test_warm"]),
            test_cold=GroupMetrics.from_dict(data["test_cold"]),
            popularity=BaselineMetrics.from_dict(data["popularity"]),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Writes `metrics.json` to `path` (a file, or a folder that receives `metrics.json`)."""
        path = Path(path)
        if path.is_dir():
            path = path / METRICS_FILE
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EvaluationReport":
        """Reads `metrics.json` from `path` (the file, or the folder holding it)."""
        path = Path(path)
        if path.is_dir():
            path = path / METRICS_FILE
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def format_summary(self) -> str:
        """A plain-text table of the test metrics (with CIs) beside the popularity baseline."""
        rows = [f"{'metric':<10}{'GenRec (95% CI)':>30}{'popularity (95% CI)':>30}"]
        for name, value in self.test.items():
            baseline = self.popularity.test[name]
            rows.append(
                f"{name:<10}{value.value:>10.4f} [{value.ci_low:.4f}, {value.ci_high:.4f}]"
                f"{baseline.value:>10.4f} [{baseline.ci_low:.4f}, {baseline.ci_high:.4f}]"
            )
        users = self.test_warm.count + self.test_cold.count
        split = self.data.split if self.data else "split not recorded"
        ranking = self.protocol.description if self.protocol else "full-catalog ranking"
        lines = [f"Test metrics ({split}, {ranking}, {users} users)", *rows]
        if self.other_protocol is not None and self.other_protocol.protocol is not None:
            other = ", ".join(f"{name} {value.value:.4f}" for name, value in self.other_protocol.test.items())
            lines.append(f"{self.other_protocol.protocol.name}: {other}")
        return "\n".join(lines)


# A report as given, its `metrics.json` content, the file, or the folder holding it.
ReportSource = EvaluationReport | Mapping[str, Any] | str | os.PathLike | None


def as_report(source: ReportSource) -> EvaluationReport | None:
    """A run's report: as given, from the `metrics.json` content, or read from the file or the folder holding it
    (`None` for `None` and for a folder without `metrics.json`, such as an untrained model's)."""
    if source is None or isinstance(source, EvaluationReport):
        return source
    if isinstance(source, Mapping):
        return EvaluationReport.from_dict(source)
    path = Path(source)
    if path.is_dir() and not (path / METRICS_FILE).is_file():
        return None
    return EvaluationReport.load(path)

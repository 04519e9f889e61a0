"""Full-catalog ranking evaluation of a `GenRecModel`, with or without a Trainer.

Eval examples are rows with `item_ids` (a history of catalog indices, oldest first) and `target_id` (the item that
came next), e.g. from `genrec_hf.sequences.eval_examples`. Every example's target is ranked among all catalog items;
`GenRecTrainer` runs the same code through its data loaders, gathering ranks across processes. Without a Trainer,
under `accelerate launch` or `torchrun`, each process ranks its share of the examples and all get every rank.

```python
evaluator = RankingEvaluator(exclude_history=True)
evaluator.evaluate(model, valid)                 # {"hr@5": ..., "ndcg@10": ..., "mrr": ..., "loss": ...}
report = evaluator.report(model, valid, test, item_counts)  # EvaluationReport: CIs, warm/cold, popularity
```
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from accelerate.utils import gather_object

from .._distributed import process_state
from ..modeling_genrec import GenRecModel
from ..modeling_genrec_generative import GenRecForSemanticIDGeneration
from ..processing_genrec import GenRecProcessor
from ..ranking import history_mask, popularity_scores, rank_of_targets, shared_score_ranks
from .metrics import metrics_with_ci, ranking_metrics
from .report import BaselineMetrics, Estimate, EvaluationProtocol, EvaluationReport, GroupMetrics, estimates

if TYPE_CHECKING:  # evaluating needs no `datasets` import, only a table that slices like one
    from datasets import Dataset


def collate_examples(
    histories: Sequence[Sequence[int]], targets: Sequence[int], pad_to_multiple_of: int | None = None
) -> dict[str, torch.Tensor]:
    """A batch of eval examples: right-padded `item_ids` and `attention_mask`, and the targets as `labels`."""
    batch = GenRecProcessor.pad_histories(histories, pad_to_multiple_of=pad_to_multiple_of)
    return {**batch, "labels": torch.as_tensor(targets, dtype=torch.long)}


def example_batches(examples: Dataset, batch_size: int, rows: range | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """[`collate_examples`] batches of `examples` (of its `rows`, default all), in order."""
    rows = range(len(examples)) if rows is None else rows
    for start in range(rows.start, rows.stop, batch_size):
        batch = examples[start : min(start + batch_size, rows.stop)]
        yield collate_examples(batch["item_ids"], batch["target_id"])


def popularity_baseline_ranks(
    examples: Dataset, item_counts: torch.Tensor, exclude_history: bool, batch_size: int = 1024
) -> torch.Tensor:
    """Ranks of each example's target when items are ranked by training popularity (the ranks `rank_of_targets` gives,
    computed from the sorted counts: no `(examples, num_items)` scores).

    `item_counts` holds the training interactions of catalog items `1..num_items` (no padding entry).
    """
    scores = popularity_scores(torch.cat([torch.zeros(1), item_counts.float()]))
    ordered = scores.sort().values
    ranks = [
        shared_score_ranks(scores, batch["labels"], batch["item_ids"] if exclude_history else None, ordered)
        for batch in example_batches(examples, batch_size)
    ]
    return torch.cat(ranks) if ranks else torch.zeros(0)


RecommenderModel = GenRecModel | GenRecForSemanticIDGeneration


def beams_of(model: RecommenderModel) -> int | None:
    """The beams a generative model ranks with; `None` for a dense model (it ranks the whole catalog)."""
    return model.config.num_beams if isinstance(model, GenRecForSemanticIDGeneration) else None


@contextlib.contextmanager
def batch_scorer(model: RecommenderModel) -> Iterator[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """`score(item_ids, attention_mask)` -> the model's scores `(batch, num_items + 1)` of every catalog item, in eval
    mode and without gradients: full-catalog dot products for a dense model (its catalog encoded once), beam
    log-probabilities for a generative one. The model's mode is restored on exit."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if isinstance(model, GenRecModel):
                catalog = model.catalog_embeddings()
                yield lambda item_ids, mask: model.score_histories(item_ids, mask, catalog)[0]
            else:
                yield lambda item_ids, mask: model.score_histories(item_ids, mask)[0]
    finally:
        model.train(was_training)


def scored_batches(
    model: RecommenderModel, batches: Iterable[Mapping[str, torch.Tensor]]
) -> Iterator[tuple[Mapping[str, torch.Tensor], torch.Tensor]]:
    """Each batch with the model's scores `(batch, num_items + 1)` of every catalog item ([`batch_scorer`])."""
    with batch_scorer(model) as score:
        for batch in batches:
            yield batch, score(batch["item_ids"], batch["attention_mask"])


class RankingEvaluator:
    """Ranks every example's target over the whole catalog and reports `hr@K`, `ndcg@K`, `mrr` and the InfoNCE `loss`.

    A generative model ([`GenRecForSemanticIDGeneration`]) ranks by constrained beam search: a target's rank is its
    position in the beam list, a target outside the beams ranks below every beam item (a miss at any K up to the
    number of beams), and no loss is reported (its scores do not cover the catalog).

    Args:
        exclude_history (`bool`, *optional*, defaults to `True`):
            Remove each user's history items from the ranking (the target itself is never removed), the protocol of
            the strongest published baselines (eSASRec, BSARec) and what `recommend` serves. After deduplication no
            target is an item of its own history, so this never removes a right answer. `False` ranks every catalog
            item, as the original SASRec and the generative-retrieval papers (TIGER) do; say which one a number uses
            (the report's `protocol` does).
        ks (`Sequence[int]`, *optional*, defaults to `(5, 10, 20)`): Cut-offs of HR@K and NDCG@K.
        batch_size (`int`, *optional*, defaults to 256): Examples scored at once without a Trainer.
        bootstrap_samples (`int`, *optional*, defaults to 1000): Resamples of the reports' 95% confidence intervals.
        seed (`int`, *optional*, defaults to 0): Seed of the resamples; every CI of a report uses the same ones.
    """

    def __init__(
        self,
        exclude_history: bool = True,
        ks: Sequence[int] = (5, 10, 20),
        batch_size: int = 256,
        bootstrap_samples: int = 1000,
        seed: int = 0,
    ):
        self.exclude_history = exclude_history
        self.ks = tuple(ks)
        self.batch_size = batch_size
        self.bootstrap_samples = bootstrap_samples
        self.seed = seed

    def rank_batches(
        self,
        model: RecommenderModel,
        batches: Iterable[Mapping[str, torch.Tensor]],
        gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """1-based rank of every example's target over the whole catalog, and its InfoNCE loss (`None` for a
        generative model), in batch order.

        `batches` hold `item_ids`, `attention_mask` and the targets as `labels` (on the model's device); `gather`
        collects each batch's values from every process (the Trainer's `gather_for_metrics`).
        """
        ranks, losses = self.rank_batches_by_protocol(model, batches, gather, (self.exclude_history,))
        return ranks[self.exclude_history], losses

    @torch.no_grad()
    def rank_batches_by_protocol(
        self,
        model: RecommenderModel,
        batches: Iterable[Mapping[str, torch.Tensor]],
        gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
        protocols: Sequence[bool] = (True, False),
    ) -> tuple[dict[bool, torch.Tensor], torch.Tensor | None]:
        """[`rank_batches`] under each ranking protocol of `protocols` (values of `exclude_history`) from one scoring
        pass: the ranks keyed by protocol, and the losses (the same under both)."""
        gather = gather or (lambda values: values)
        dense = isinstance(model, GenRecModel)
        if dense:  # what every empty history scores, sorted and normalised once for all batches
            popular = popularity_scores(model.item_popularity)
            popular_sorted, popular_logsumexp = popular.sort().values, torch.logsumexp(popular[1:], dim=0)
        ranks, losses = {exclude: [] for exclude in protocols}, []
        with batch_scorer(model) as score:
            for batch in batches:
                targets, item_ids, mask = batch["labels"], batch["item_ids"], batch["attention_mask"].bool()
                # A dense model scores an empty history by training popularity, the same vector for every such
                # row: those rows are ranked from it directly (most users of a large catalog have no history).
                scored = mask.any(dim=1) if dense else torch.ones_like(targets, dtype=torch.bool)
                batch_ranks = {exclude: torch.empty(len(targets), device=targets.device) for exclude in protocols}
                batch_losses = torch.empty(len(targets), device=targets.device)
                if scored.any():
                    scores = score(item_ids[scored], batch["attention_mask"][scored])
                    seen = history_mask(item_ids[scored], scores.shape[1]) if any(protocols) else None
                    for exclude in protocols:
                        batch_ranks[exclude][scored] = rank_of_targets(
                            scores, targets[scored], seen if exclude else None
                        ).float()
                    if dense:
                        target_scores = scores.gather(1, targets[scored, None]).squeeze(1)
                        batch_losses[scored] = torch.logsumexp(scores[:, 1:], dim=1) - target_scores
                if not scored.all():  # nothing to exclude: the history is empty
                    popular_ranks = shared_score_ranks(popular, targets[~scored], sorted_scores=popular_sorted)
                    for exclude in protocols:
                        batch_ranks[exclude][~scored] = popular_ranks
                    batch_losses[~scored] = popular_logsumexp - popular[targets[~scored]]
                for exclude in protocols:
                    ranks[exclude].append(gather(batch_ranks[exclude]).cpu())
                if dense:
                    losses.append(gather(batch_losses).cpu())
        joined = {exclude: torch.cat(parts) if parts else torch.zeros(0) for exclude, parts in ranks.items()}
        return joined, torch.cat(losses) if losses else None

    def rank(self, model: RecommenderModel, examples: Dataset) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[`rank_batches`] over `examples` in batches of `batch_size`, on the model's device.

        Under `accelerate launch` or `torchrun`, call it on every process: each ranks its own contiguous share of the
        examples and every process returns the ranks and losses of all of them, in order.
        """
        ranks, losses = self.rank_by_protocol(model, examples, (self.exclude_history,))
        return ranks[self.exclude_history], losses

    def rank_by_protocol(
        self, model: RecommenderModel, examples: Dataset, protocols: Sequence[bool] = (True, False)
    ) -> tuple[dict[bool, torch.Tensor], torch.Tensor | None]:
        """[`rank`] under each protocol of `protocols` from one scoring pass (see [`rank_batches_by_protocol`])."""
        state = process_state()
        share = range(
            len(examples) * state.process_index // state.num_processes,
            len(examples) * (state.process_index + 1) // state.num_processes,
        )
        device = model.device
        batches = (
            {name: values.to(device) for name, values in batch.items()}
            for batch in example_batches(examples, self.batch_size, share)
        )
        # one (ranks by protocol, losses) per process, in order
        shares = gather_object([self.rank_batches_by_protocol(model, batches, protocols=protocols)])
        losses = [share_losses for _, share_losses in shares if share_losses is not None]
        ranks = {exclude: torch.cat([share_ranks[exclude] for share_ranks, _ in shares]) for exclude in protocols}
        return ranks, torch.cat(losses) if losses else None

    def metrics(self, ranks: torch.Tensor, losses: torch.Tensor | None = None) -> dict[str, float]:
        """`hr@K`, `ndcg@K` and `mrr` of `ranks`, and the mean `loss` when `losses` are given."""
        metrics = ranking_metrics(ranks, self.ks)
        if losses is not None:
            metrics["loss"] = losses.mean().item() if len(losses) else float("nan")
        return metrics

    def evaluate(self, model: RecommenderModel, examples: Dataset) -> dict[str, float]:
        """The metrics and mean loss of `model` on `examples`."""
        return self.metrics(*self.rank(model, examples))

    def report(
        self, model: RecommenderModel, valid: Dataset, test: Dataset, item_counts: torch.Tensor
    ) -> EvaluationReport:
        """The [`report_from_ranks`] of `model` on `valid` and `test`, with the other protocol's numbers (each split
        is scored once and ranked both ways)."""
        valid_ranks, test_ranks = self.rank_by_protocol(model, valid)[0], self.rank_by_protocol(model, test)[0]
        return self.report_from_ranks(valid_ranks, test_ranks, valid, test, item_counts, beams_of(model))

    def report_from_ranks(
        self,
        valid_ranks: torch.Tensor | Mapping[bool, torch.Tensor],
        test_ranks: torch.Tensor | Mapping[bool, torch.Tensor],
        valid: Dataset,
        test: Dataset,
        item_counts: torch.Tensor,
        num_beams: int | None = None,
    ) -> EvaluationReport:
        """Valid metrics, test metrics with 95% CIs, the warm/cold split of test and the popularity baseline.

        The ranks are those of this evaluator's protocol, or ranks keyed by `exclude_history` for both protocols
        ([`rank_by_protocol`]): the report is then this evaluator's protocol, with the other one's numbers as its
        `other_protocol`. `num_beams` names the beam search that produced the ranks of a generative model (see
        [`beams_of`]).

        `item_counts` holds the training interactions of catalog items `1..num_items`: a test target is warm when
        its item occurs in the training sequences (`item_counts > 0`), cold otherwise.
        """
        if not isinstance(valid_ranks, Mapping):
            valid_ranks, test_ranks = {self.exclude_history: valid_ranks}, {self.exclude_history: test_ranks}
        reports = {
            exclude: self._protocol_report(
                exclude, valid_ranks[exclude], test_ranks[exclude], valid, test, item_counts, num_beams
            )
            for exclude in valid_ranks
        }
        report = reports.pop(self.exclude_history)
        report.other_protocol = reports.pop(not self.exclude_history, None)
        return report

    def _protocol_report(
        self,
        exclude_history: bool,
        valid_ranks: torch.Tensor,
        test_ranks: torch.Tensor,
        valid: Dataset,
        test: Dataset,
        item_counts: torch.Tensor,
        num_beams: int | None,
    ) -> EvaluationReport:
        """The report of one ranking protocol (see [`report_from_ranks`])."""
        warm = item_counts[torch.tensor(test["target_id"][:]) - 1] > 0  # [:]: one list, not a row-by-row read

        def with_ci(ranks: torch.Tensor) -> dict[str, Estimate]:
            return estimates(metrics_with_ci(ranks, self.ks, num_samples=self.bootstrap_samples, seed=self.seed))

        def popularity(examples: Dataset) -> torch.Tensor:
            return popularity_baseline_ranks(examples, item_counts, exclude_history)

        return EvaluationReport(
            protocol=EvaluationProtocol.full_ranking(exclude_history, self.bootstrap_samples, num_beams),
            valid=ranking_metrics(valid_ranks, self.ks),
            test=with_ci(test_ranks),
            test_warm=GroupMetrics(int(warm.sum()), with_ci(test_ranks[warm])),
            test_cold=GroupMetrics(int((~warm).sum()), with_ci(test_ranks[~warm])),
            popularity=BaselineMetrics(ranking_metrics(popularity(valid), self.ks), with_ci(popularity(test))),
        )


__all__ = [
    "batch_scorer",
    "scored_batches",
    "RankingEvaluator",
    "RecommenderModel",
    "beams_of",
    "collate_examples",
    "example_batches",
    "popularity_baseline_ranks",
]

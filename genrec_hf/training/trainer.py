"""GenRecTrainer: the stock Trainer with InfoNCE from the model and full-catalog ranking evaluation."""

from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import Trainer
from transformers.trainer_utils import EvalLoopOutput

from ..hub import METRICS_FILE, build_model_card
from ..modeling_genrec import GenRecModel
from ..ranking import history_mask, rank_of_targets
from .metrics import ranking_metrics


class GenRecTrainer(Trainer):
    """Trains a [`GenRecModel`] and evaluates it by ranking the whole catalog for every example.

    The loss is the model's InfoNCE (every position predicts its next item), normalised by the number of labelled
    positions over all gradient-accumulation micro-batches and processes, so accumulation matches a larger batch.
    Evaluation encodes the catalog once, ranks each example's target among all items (ties count as the expected
    rank under random tie-breaking) and reports `hr@K`, `ndcg@K` and `mrr` plus the mean InfoNCE `loss`. Ranks are
    gathered across processes, so several processes report the same metrics as one.

    Args:
        exclude_history (`bool`, *optional*, defaults to `False`):
            Remove each user's history items from the ranking (the target itself is never removed). The default ranks
            every catalog item, as the original SASRec protocol does; both protocols are common, so say which one a
            number uses.
        metric_ks (`Sequence[int]`, *optional*, defaults to `(5, 10, 20)`):
            Cut-offs of HR@K and NDCG@K.
    """

    def __init__(self, *args, exclude_history: bool = False, metric_ks: Sequence[int] = (5, 10, 20), **kwargs):
        super().__init__(*args, **kwargs)
        self.exclude_history = exclude_history
        self.metric_ks = tuple(metric_ks)

    def create_model_card(self, model_name: str | None = None, **kwargs) -> None:
        """Writes the genrec_hf model card (with `metrics.json` when the run wrote one) as `README.md`."""
        if not self.is_world_process_zero():
            return
        output_dir = Path(self.args.output_dir)
        metrics = output_dir / METRICS_FILE
        card = build_model_card(
            self.accelerator.unwrap_model(self.model),
            self.processing_class,
            metrics if metrics.exists() else None,
            dataset_name=kwargs.get("dataset"),
            repo_id=self.args.hub_model_id,
        )
        card.save(output_dir / "README.md")

    def evaluation_loop(
        self,
        dataloader: DataLoader,
        description: str,
        prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> EvalLoopOutput:
        ranks, losses = self.rank_targets(dataloader)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in ranking_metrics(ranks, self.metric_ks).items()}
        metrics[f"{metric_key_prefix}_loss"] = losses.mean().item() if len(losses) else float("nan")
        return EvalLoopOutput(predictions=ranks.numpy(), label_ids=None, metrics=metrics, num_samples=len(ranks))

    @torch.no_grad()
    def rank_targets(self, dataloader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
        """1-based rank of every example's target over the whole catalog, and its InfoNCE loss, in dataset order."""
        model: GenRecModel = self.accelerator.unwrap_model(self.model)
        was_training = model.training
        model.eval()
        ranks, losses = [], []
        with self.autocast_smart_context_manager():
            catalog = model.catalog_embeddings()
            for batch in dataloader:
                batch = self._prepare_inputs(batch)
                scores, _ = model.score_histories(batch["item_ids"], batch["attention_mask"], catalog)
                targets = batch["labels"]
                exclude = history_mask(batch["item_ids"], scores.shape[1]) if self.exclude_history else None
                batch_ranks = rank_of_targets(scores, targets, exclude)
                batch_losses = torch.logsumexp(scores[:, 1:], dim=1) - scores.gather(1, targets[:, None]).squeeze(1)
                ranks.append(self.accelerator.gather_for_metrics(batch_ranks.float()).cpu())
                losses.append(self.accelerator.gather_for_metrics(batch_losses.float()).cpu())
        model.train(was_training)
        return torch.cat(ranks), torch.cat(losses)


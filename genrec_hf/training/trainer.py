"""GenRecTrainer: the stock Trainer with InfoNCE from the model and full-catalog ranking evaluation."""

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
from datasets import Dataset
from huggingface_hub import CommitInfo, HfApi
from torch.distributed.fsdp import FSDPModule
from torch.utils.data import DataLoader, SequentialSampler
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, EvalLoopOutput, HubStrategy, has_length

from ..evaluation import EvaluationReport, RankingEvaluator
from ..evaluation.evaluator import RecommenderModel, beams_of
from ..modeling_genrec import GenRecModel
from .weight_averaging import WeightAverage, WeightAveragingCallback

logger = logging.getLogger("genrec_hf.train")

# Epochs of weight averaging of a dense model unless told (benchmarks/README.md, fourth ablation round).
DEFAULT_WEIGHT_AVERAGING_EPOCHS = 3.0


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped batches whose order depends only on `(seed, epoch)`.

    The stock sampler draws its order from the global RNG when its epoch starts; a run resumed mid-epoch restores
    that RNG only after skipping to its step, so it drew a different order than the uninterrupted run (from the
    second epoch on) and trained on other batches.
    """

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths, generator=torch.Generator())
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        self.generator.manual_seed(self.seed + self.epoch)
        return super().__iter__()


@contextmanager
def unsharded(model: torch.nn.Module) -> Iterator[None]:
    """Every parameter of an FSDP2-sharded `model` whole on every process for the block, sharded again after it.

    Ranking encodes the catalog and the histories with the model's methods rather than its `forward`, and outside
    `forward` FSDP keeps the parameters (e.g. the position embeddings) sharded. A model without FSDP is left alone.
    """
    units = [module for module in model.modules() if isinstance(module, FSDPModule)]
    for unit in units:
        unit.unshard()
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()


class GenRecTrainer(Trainer):
    """Trains a [`GenRecModel`] and evaluates it by ranking the whole catalog for every example.

    The loss is the model's InfoNCE (every position predicts its next item), normalised by the number of labelled
    positions over all gradient-accumulation micro-batches and processes, so accumulation matches a larger batch.
    Evaluation is a [`RankingEvaluator`] run through the Trainer's data loaders: the catalog is encoded once, each
    example's target is ranked among all items (ties count as the expected rank under random tie-breaking) and
    `hr@K`, `ndcg@K`, `mrr` and the mean InfoNCE `loss` are reported. Ranks are gathered across processes, so several
    processes report the same metrics as one. Under FSDP2 (`configs/accelerate/fsdp.yaml`) the sharded parameters are
    gathered whole for each evaluation, which runs outside `forward` ([`unsharded`]); FSDP1 is refused.

    Every push goes through `genrec_hf.hub.publish`, so each commit holds the whole `save_for_hub` folder (remote
    code, processor, card): `push_to_hub()` publishes `output_dir`, and with `args.push_to_hub` each checkpoint save
    publishes the checkpoint as `args.hub_strategy` asks (`checkpoint` / `all_checkpoints` also upload the raw
    checkpoint folder, to resume from). The stock pushes would upload config and weights without the code files, so a
    Hub repo whose config names them could not be loaded. Pushes are made before the call returns (not in the
    background).

    The catalog's content features are written once per run, to `item_features.safetensors` in the run folder at the
    first checkpoint; each checkpoint's config refers to that file (`../item_features.safetensors`, with its SHA-256)
    instead of holding a copy, so a checkpoint is its weights and training state. A model saved with `save_model`
    outside checkpoints is self-contained (the same file is hard-linked into it where the file system allows).

    Args:
        exclude_history (`bool`, *optional*, defaults to `True`):
            Remove each user's history items from the ranking (the target itself is never removed); `False` ranks
            every catalog item. See [`RankingEvaluator`].
        metric_ks (`Sequence[int]`, *optional*, defaults to `(5, 10, 20)`):
            Cut-offs of HR@K and NDCG@K.
        bootstrap_samples (`int`, *optional*, defaults to 1000):
            Resamples of the confidence intervals of [`evaluation_report`] (drawn from `args.seed`).
        hub_token (`str`, *optional*):
            Token of the pushes, kept out of `args` (which the Trainer pickles into every checkpoint); defaults to
            `args.hub_token`, then huggingface_hub's `HF_TOKEN` or saved login.
        weight_averaging_epochs (`float`, *optional*, defaults to 0):
            Evaluate, select and save an exponential moving average of the weights spanning about this many epochs
            ([`WeightAveragingCallback`]); 0 trains without one. `None` picks 3 for either head (the measured default
            of `scripts/train.py`) and 0 for other models or under FSDP (whose sharded parameters the average does
            not follow; asking for one there is an error). Each checkpoint keeps the
            trained weights beside the average (`training_weights.safetensors`), so a resumed run goes on exactly.
    """

    def __init__(
        self,
        *args,
        exclude_history: bool = True,
        metric_ks: Sequence[int] = (5, 10, 20),
        bootstrap_samples: int = 1000,
        hub_token: str | None = None,
        weight_averaging_epochs: float | None = 0.0,
        **kwargs,
    ):
        self._hub_token = hub_token  # before super().__init__, which creates the repo when args.push_to_hub
        super().__init__(*args, **kwargs)
        if self.is_fsdp_enabled and getattr(self.accelerator.state.fsdp_plugin, "fsdp_version", 1) != 2:
            raise ValueError(
                "GenRecTrainer runs under FSDP2 only (fsdp_version: 2, as in configs/accelerate/fsdp.yaml): its "
                "evaluation gathers the sharded parameters with FSDP2's unshard"
            )
        self.weight_averaging_epochs = self._resolve_weight_averaging(weight_averaging_epochs)
        self._weight_averaging = None
        if self.weight_averaging_epochs:
            self._weight_averaging = WeightAveragingCallback(self.weight_averaging_epochs)
            self.add_callback(self._weight_averaging)
        self.evaluator = RankingEvaluator(
            exclude_history=exclude_history, ks=metric_ks, bootstrap_samples=bootstrap_samples, seed=self.args.seed
        )

    def _resolve_weight_averaging(self, epochs: float | None) -> float:
        if epochs is not None:
            if epochs < 0:
                raise ValueError(f"weight_averaging_epochs must be >= 0, got {epochs}")
            if epochs and self.is_fsdp_enabled:
                raise ValueError(
                    "weight averaging does not run under FSDP (the average would follow one shard of each "
                    "parameter); set weight_averaging_epochs to 0"
                )
            return float(epochs)
        if self.is_fsdp_enabled:
            logger.info("weight averaging off under FSDP")
            return 0.0
        return DEFAULT_WEIGHT_AVERAGING_EPOCHS if isinstance(self.model, RecommenderModel) else 0.0

    @property
    def weight_average(self) -> WeightAverage | None:
        """The running average of the weights (from the start of training on), or `None` without averaging."""
        return self._weight_averaging.average if self._weight_averaging else None

    def _maybe_log_save_evaluate(self, *args, **kwargs) -> None:
        """Evaluates and saves the weight average, when there is one, then trains on with the trained weights."""
        averaging = self.weight_average is not None and (self.control.should_evaluate or self.control.should_save)
        with self.weight_average.swapped_in() if averaging else nullcontext():
            super()._maybe_log_save_evaluate(*args, **kwargs)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        if self._weight_averaging:
            self._weight_averaging.resume(self.model, resume_from_checkpoint)

    def _get_train_sampler(self, train_dataset: Dataset | None = None):
        sampler = super()._get_train_sampler(train_dataset)
        if type(sampler) is LengthGroupedSampler:  # resumable: see EpochSeededLengthGroupedSampler
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return EpochSeededLengthGroupedSampler(sampler.batch_size, sampler.lengths, seed)
        return sampler

    def _get_eval_sampler(self, eval_dataset: Dataset) -> torch.utils.data.Sampler | None:
        """Examples in dataset order, whatever the training sampler: ranks are matched to their examples by position
        (the warm/cold split of the report), which the stock length-grouped eval sampler would shuffle."""
        if eval_dataset is None or not has_length(eval_dataset):
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None

    def init_hf_repo(self, token: str | None = None, private: bool | None = None) -> None:
        """Creates (or reuses) the run's Hub repository as the Trainer does, through `HfApi` on every supported
        transformers version (5.4 has no `private` argument and calls a module-level `create_repo`)."""
        if not self.is_world_process_zero():
            return
        repo_name = self.args.hub_model_id or Path(self.args.output_dir).absolute().name
        private = self.args.hub_private_repo if private is None else private
        repo_url = HfApi().create_repo(repo_name, token=token or self._hub_token, private=private, exist_ok=True)
        self.hub_model_id = repo_url.repo_id
        self.push_in_progress = None

    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        private: bool | None = None,
        **card_kwargs,
    ) -> CommitInfo | None:
        """Saves the model to `args.output_dir` and publishes that folder (with its `metrics.json` and carried
        files) in one commit; returns the `CommitInfo` on the main process, `None` on the others. `card_kwargs` go
        to `build_model_card` (`dataset_name`, `license`, `extra_tags`). The commit is made before this returns
        whatever `blocking` says."""
        self.save_model(_internal_call=True)
        return self.publish_folder(self.args.output_dir, commit_message, token, revision, private, **card_kwargs)

    def publish_folder(
        self,
        folder: str | os.PathLike,
        commit_message: str | None = "End of training",
        token: str | None = None,
        revision: str | None = None,
        private: bool | None = None,
        **card_kwargs,
    ) -> CommitInfo | None:
        """Publishes a saved model folder to `args.hub_model_id` (default: the output folder's name) with
        `genrec_hf.hub.publish`, from the main process only."""
        from ..hub import publish  # the hub layer sits above training

        if not self.is_world_process_zero():
            return None
        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        return publish(
            folder,
            self.hub_model_id or self.args.hub_model_id or Path(self.args.output_dir).absolute().name,
            token=token or self.args.hub_token or self._hub_token,
            private=self.args.hub_private_repo if private is None else private,
            revision=revision or self.args.hub_revision,
            commit_message=commit_message or "End of training",
            **card_kwargs,
        )

    def _save_checkpoint(self, model, trial) -> None:
        if self._weight_averaging and self.args.should_save:  # before the Trainer's files, which mark it complete
            folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            self._weight_averaging.save_trained_weights(folder)
        genrec = self.accelerator.unwrap_model(self.model)
        if not isinstance(genrec, GenRecModel):  # the generative head keeps no content features
            return super()._save_checkpoint(model, trial)
        with genrec.item_features_kept_in(self._get_output_dir(trial=trial)):
            super()._save_checkpoint(model, trial)

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """A checkpoint save's push (`args.hub_strategy`), published like the final model."""
        if not self.is_world_process_zero() or self.args.hub_strategy == HubStrategy.END:
            return
        message = f"Training in progress, step {self.state.global_step}"
        self.publish_folder(checkpoint_folder, message)
        if self.args.hub_strategy in (HubStrategy.CHECKPOINT, HubStrategy.ALL_CHECKPOINTS):
            name = (
                "last-checkpoint" if self.args.hub_strategy == HubStrategy.CHECKPOINT else Path(checkpoint_folder).name
            )
            HfApi(token=self.args.hub_token or self._hub_token).upload_folder(
                repo_id=self.hub_model_id,
                folder_path=checkpoint_folder,
                path_in_repo=name,
                commit_message=f"{message}, checkpoint",
                revision=self.args.hub_revision,
            )

    def evaluation_loop(
        self,
        dataloader: DataLoader,
        description: str,
        prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> EvalLoopOutput:
        ranks, losses = self.rank_targets(dataloader)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in self.evaluator.metrics(ranks, losses).items()}
        return EvalLoopOutput(predictions=ranks.numpy(), label_ids=None, metrics=metrics, num_samples=len(ranks))

    def rank_targets(self, dataloader: DataLoader) -> tuple[torch.Tensor, torch.Tensor | None]:
        """1-based rank of every example's target over the whole catalog, and its InfoNCE loss (`None` for a
        generative model), in dataset order."""
        ranks, losses = self.rank_targets_by_protocol(dataloader, (self.evaluator.exclude_history,))
        return ranks[self.evaluator.exclude_history], losses

    def rank_targets_by_protocol(
        self, dataloader: DataLoader, protocols: Sequence[bool] = (True, False)
    ) -> tuple[dict[bool, torch.Tensor], torch.Tensor | None]:
        """[`rank_targets`] under each ranking protocol of `protocols` (values of `exclude_history`), from one scoring
        pass (see `RankingEvaluator.rank_batches_by_protocol`)."""
        model = self.accelerator.unwrap_model(self.model)
        with unsharded(self.model), self.autocast_smart_context_manager():
            batches = (self._prepare_inputs(batch) for batch in dataloader)
            gather = self.accelerator.gather_for_metrics
            return self.evaluator.rank_batches_by_protocol(model, batches, gather=gather, protocols=protocols)

    def evaluation_report(self, valid: Dataset, test: Dataset, item_counts: torch.Tensor) -> EvaluationReport:
        """The final [`EvaluationReport`] of the model on `valid` and `test` (see `RankingEvaluator.report`), with the
        other ranking protocol's numbers from the same scores (a generative model's beam search runs once)."""
        valid_ranks, _ = self.rank_targets_by_protocol(self.get_eval_dataloader(valid))
        test_ranks, _ = self.rank_targets_by_protocol(self.get_eval_dataloader(test))
        model = self.accelerator.unwrap_model(self.model)
        return self.evaluator.report_from_ranks(valid_ranks, test_ranks, valid, test, item_counts, beams_of(model))


__all__ = ["EpochSeededLengthGroupedSampler", "GenRecTrainer", "unsharded"]

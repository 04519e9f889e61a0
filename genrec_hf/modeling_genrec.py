"""GenRec: content/ID item tower, causal Transformer user tower, scores over the item catalog."""

import contextlib
import math
import os
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import SAFE_WEIGHTS_NAME, ModelOutput, cached_file, logging

from ._atomic import atomic_path
from .configuration_genrec import GenRecConfig
from .item_features_file import (
    FEATURE_DTYPE,
    ITEM_FEATURES_FILE,
    features_sha256,
    holds,
    map_features,
    remember,
    write_features,
)
from .losses_genrec import full_catalog_info_nce, gather_across_processes, sampled_info_nce, sampling_log_q
from .ranking import (
    catalog_scores,
    exclude_history,
    leave_one_out_contributions,
    leave_one_out_histories,
    popularity_scores,
    top_k,
)

logger = logging.get_logger(__name__)

# Content features (name in the features file -> buffer of the model); `from_pretrained` arguments that locate files.
FEATURE_BUFFERS = {
    "text_features": "item_text_features",
    "image_features": "item_image_features",
    "image_mask": "item_image_mask",
}
HUB_KWARGS = ("cache_dir", "force_download", "proxies", "local_files_only", "token", "revision", "subfolder")


@dataclass
class GenRecOutput(ModelOutput):
    r"""
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            InfoNCE loss, returned when `labels` are given.
        logits (`torch.FloatTensor` of shape `(batch_size, num_items + 1)`, *optional*):
            Scores of the last history position against the whole catalog (column 0, padding, is `-inf`). Returned
            when the model is not training.
        interest_embeds (`torch.FloatTensor` of shape `(batch_size, sequence_length, hidden_size)`):
            Interest vector at every position (each sees only its own past).
        last_interest_embeds (`torch.FloatTensor` of shape `(batch_size, hidden_size)`):
            The interest vector at each history's last item.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    interest_embeds: torch.FloatTensor | None = None
    last_interest_embeds: torch.FloatTensor | None = None


@dataclass
class GenRecRecommendations(ModelOutput):
    r"""
    Args:
        item_indices (`torch.LongTensor` of shape `(batch_size, k)`): recommended catalog indices, best first.
        scores (`torch.FloatTensor` of shape `(batch_size, k)`): their scores.
        popularity_fallback (`torch.BoolTensor` of shape `(batch_size,)`): histories that were empty and got the
            training popularity ranking instead of a personal one.
    """

    item_indices: torch.LongTensor | None = None
    scores: torch.FloatTensor | None = None
    popularity_fallback: torch.BoolTensor | None = None


@dataclass
class GenRecSimilarItems(ModelOutput):
    r"""
    Args:
        item_indices (`torch.LongTensor` of shape `(num_queries, k)`): the most similar catalog indices to each query
            item, most similar first (never the query item itself, never padding).
        scores (`torch.FloatTensor` of shape `(num_queries, k)`): their similarity to the query item.
    """

    item_indices: torch.LongTensor | None = None
    scores: torch.FloatTensor | None = None


@dataclass
class GenRecExplanation(ModelOutput):
    r"""
    Args:
        scores (`torch.FloatTensor` of shape `(batch_size, num_explained)`): the score of each explained item for the
            whole history, the score `recommend` ranks it by (training popularity for an empty history).
        contributions (`torch.FloatTensor` of shape `(batch_size, num_explained, sequence_length)`): how much each
            history position adds to that score: the score minus the score of the history without that position
            (its later items moved up one slot). Padding positions are 0. In a one-item history the item's
            contribution is the whole score, since no history is left to score without it.
        content_share (`torch.FloatTensor` of shape `(batch_size, num_explained)`): the share of each explained
            item's vector that comes from its content rather than its ID embedding, `|content part| / (|content
            part| + |ID part|)`: 1 for content-only fusion and for items without a trained ID, 0 for ID-only fusion.
    """

    scores: torch.FloatTensor | None = None
    contributions: torch.FloatTensor | None = None
    content_share: torch.FloatTensor | None = None


# Whitening strength: this multiple of the mean variance is added to every variance before scaling. 3 flattens the
# few directions sentence encoders crowd into and leaves the rest at their relative scale; 0.1 (near-full whitening)
# ranks the same (Scientific gate, seed 0: test NDCG@10 0.0905 against 0.0910) but scales noise directions up until
# the most similar items of a gated model no longer share their product form (All_Beauty: 2.0x chance against 4.8x;
# benchmarks/README.md, seventh round).
WHITENING_EPSILON = 3.0


class FeatureWhitening(nn.Module):
    """PCA whitening of content features, fitted on a catalog: centred, rotated onto their principal axes and each
    axis divided by the square root of its variance plus `epsilon` times the mean variance, so that the few directions
    sentence-encoder vectors crowd into no longer drown the rest in the projection after it. Identity until fitted.

    It is folded into the projection's weight (`project`), so it costs a `d x D` product per step, not a `D x D` one
    per item, and a checkpoint saved without it loads as the identity.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("transform", torch.eye(dim))

    @torch.no_grad()
    def fit(self, features: torch.Tensor, epsilon: float = WHITENING_EPSILON) -> None:
        """Fits on `features` (one row per item); `epsilon` times the mean variance is added to every variance, so
        directions the catalog barely spans are not blown up (`WHITENING_EPSILON`)."""
        if len(features) < 2:
            raise ValueError(f"whitening needs at least 2 feature rows, got {len(features)}")
        features = features.double()  # float64: the smallest variances are orders below the largest
        mean = features.mean(dim=0)
        centred = features - mean
        variances, axes = torch.linalg.eigh(centred.T @ centred / len(centred))
        variances = variances.clamp(min=0)
        self.mean.copy_(mean)
        self.transform.copy_(axes * (variances + epsilon * variances.mean()).rsqrt())

    @property
    def fitted(self) -> bool:
        """Whether `fit` has replaced the identity."""
        identity = torch.eye(len(self.transform), dtype=self.transform.dtype, device=self.transform.device)
        return bool(self.mean.any()) or not torch.equal(self.transform, identity)

    def project(self, linear: nn.Linear, features: torch.Tensor) -> torch.Tensor:
        """`linear` applied to the whitened `features`."""
        weight = linear.weight @ self.transform.T.to(linear.weight.dtype)
        return F.linear(features, weight, linear.bias - weight @ self.mean.to(weight.dtype))


class GenRecItemTower(nn.Module):
    """Embeds catalog items: projected content features and learned ID vectors, fused by `config.fusion`.

    The gate sees the content vector, the ID vector and whether the ID is known; unknown IDs (cold items, or IDs
    hidden by ID-dropout) contribute a zero ID vector, so the item is still embedded from its content.
    """

    def __init__(self, config: GenRecConfig):
        super().__init__()
        self.fusion = config.fusion
        self.id_dropout = config.id_dropout
        hidden = config.hidden_size
        uses_content = config.fusion != "id"
        self.text_proj = self.image_proj = self.text_whitening = self.image_whitening = None
        if uses_content and config.text_feature_dim:
            self.text_proj = nn.Linear(config.text_feature_dim, hidden)
            self.text_whitening = FeatureWhitening(config.text_feature_dim)
        if uses_content and config.image_feature_dim:
            self.image_proj = nn.Linear(config.image_feature_dim, hidden)
            self.image_whitening = FeatureWhitening(config.image_feature_dim)
        self.content_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps) if uses_content else None
        self.id_embeddings = (
            nn.Embedding(config.num_id_items + 1, hidden, padding_idx=0) if config.fusion != "content" else None
        )
        self.gate = nn.Linear(2 * hidden + 1, hidden) if config.fusion == "gate" else None

    @property
    def content_whitened(self) -> bool:
        """Whether a fitted whitening precedes the content projection (`GenRecModel.fit_content_whitening`)."""
        return any(w is not None and w.fitted for w in (self.text_whitening, self.image_whitening))

    def content_vectors(
        self, text_features: torch.Tensor, image_features: torch.Tensor, image_mask: torch.Tensor
    ) -> torch.Tensor:
        vectors = 0
        if self.text_proj is not None:
            vectors = vectors + self.text_whitening.project(self.text_proj, text_features)
        if self.image_proj is not None:
            images = self.image_whitening.project(self.image_proj, image_features)
            vectors = vectors + images * image_mask.unsqueeze(-1).to(image_features.dtype)
        return self.content_norm(vectors)

    def components(
        self,
        item_indices: torch.LongTensor,
        text_features: torch.Tensor,
        image_features: torch.Tensor,
        image_mask: torch.Tensor,
        id_known: torch.Tensor,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The content part and the ID part of the fused item vectors (`None` for a part the fusion lacks); `forward`
        returns their sum. With the gate they are `gate * content` and `(1 - gate) * id_vector`."""
        if self.id_embeddings is not None and self.training and self.id_dropout > 0:
            id_known = id_known & (torch.rand(id_known.shape, device=id_known.device) >= self.id_dropout)
        if self.fusion == "content":
            return self.content_vectors(text_features, image_features, image_mask), None
        known = id_known.unsqueeze(-1).to(self.id_embeddings.weight.dtype)
        id_vectors = self.id_embeddings(torch.where(id_known, item_indices, 0)) * known
        if self.fusion == "id":
            return None, id_vectors
        content = self.content_vectors(text_features, image_features, image_mask)
        if self.fusion == "sum":
            return content, id_vectors
        gate = torch.sigmoid(self.gate(torch.cat([content, id_vectors, known], dim=-1)))
        return gate * content, (1.0 - gate) * id_vectors

    def forward(
        self,
        item_indices: torch.LongTensor,
        text_features: torch.Tensor,
        image_features: torch.Tensor,
        image_mask: torch.Tensor,
        id_known: torch.Tensor,
    ) -> torch.Tensor:
        content, ids = self.components(item_indices, text_features, image_features, image_mask, id_known)
        if content is None or ids is None:
            return ids if content is None else content
        return content + ids


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain attention over `(batch, heads, length, head_dim)` inputs; `attention_mask` is additive."""
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = F.dropout(weights.softmax(dim=-1), p=dropout, training=module.training)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


class GenRecAttention(nn.Module):
    """Causal multi-head self-attention, dispatched through `config._attn_implementation` (eager, sdpa, ...)."""

    is_causal = True

    def __init__(self, config: GenRecConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = config.attention_dropout_prob

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = hidden_states.shape
        qkv = self.qkv(hidden_states).view(batch, length, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)
        # Histories are right-padded, so a causal mask alone keeps every real position away from padding.
        implementation = self.config._attn_implementation
        attention: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        mask = None
        if implementation == "eager":
            mask = torch.full((length, length), float("-inf"), device=query.device, dtype=query.dtype).triu(1)
        attended, _ = attention(
            self,
            query,
            key,
            value,
            mask,
            dropout=self.dropout if self.training else 0.0,
            scaling=self.scaling,
            is_causal=True,
        )
        return self.out_proj(attended.reshape(batch, length, hidden))


class GenRecLayer(GradientCheckpointingLayer):
    """Pre-norm Transformer layer: causal self-attention and a GELU feed-forward block."""

    def __init__(self, config: GenRecConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = GenRecAttention(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = nn.Sequential(
            nn.Linear(config.hidden_size, config.intermediate_size),
            nn.GELU(),
            nn.Linear(config.intermediate_size, config.hidden_size),
        )
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = hidden_states + self.dropout(self.attention(self.attention_norm(hidden_states)))
        return hidden_states + self.dropout(self.feed_forward(self.feed_forward_norm(hidden_states)))


class GenRecPreTrainedModel(PreTrainedModel):
    config: GenRecConfig
    main_input_name = "item_ids"
    _no_split_modules = ["GenRecLayer"]
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_attention_backend = True
    # The loss is a sum divided by `num_items_in_batch`, which the Trainer counts over all gradient-accumulation
    # micro-batches (labels != -100): accumulated gradients then equal those of the larger batch.
    accepts_loss_kwargs = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, GenRecModel):
            init.normal_(module.position_embeddings, std=self.config.initializer_range)
        elif isinstance(module, FeatureWhitening):
            init.zeros_(module.mean)
            init.eye_(module.transform)


class GenRecModel(GenRecPreTrainedModel):
    """Next-item recommender over a fixed item catalog whose content features travel with the model.

    The catalog's content features (text and image features, image masks) are kept in float16 and saved once, in
    `item_features.safetensors` beside the weights (not in them); `from_pretrained` memory-maps that file, so a loaded
    model scores and recommends without the item encoder or a network, and only the rows it gathers are read (and
    upcast to the model's dtype). Known-ID flags and training popularity, which training decides, stay in the weights.
    """

    # configs saved before the features had their own file keep them in the weights (see `_load_item_features`)
    _keys_to_ignore_on_load_unexpected = [rf"^{name}$" for name in FEATURE_BUFFERS.values()]

    def __init__(self, config: GenRecConfig):
        super().__init__(config)
        for name, (dtype, shape) in self._item_features_layout().items():  # saved in their own file, not the weights
            self.register_buffer(FEATURE_BUFFERS[name], torch.zeros(shape, dtype=dtype), persistent=False)
        self.register_buffer("item_id_known", self._default_id_known(config))
        self.register_buffer("item_popularity", torch.zeros(config.num_items + 1))
        # The same on every process and fixed in training: DDP need not broadcast them (nor un-share their mapping).
        self._ddp_params_and_buffers_to_ignore = list(FEATURE_BUFFERS.values())
        self._item_features_home: str | os.PathLike | None = None
        self.item_tower = GenRecItemTower(config)
        self.position_embeddings = nn.Parameter(torch.empty(config.max_seq_len, config.hidden_size))
        self.embedding_dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layers = nn.ModuleList(GenRecLayer(config) for _ in range(config.num_hidden_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def get_input_embeddings(self) -> GenRecItemTower:
        """The item tower: it embeds history items and the catalog they are scored against (accelerate's FSDP2 shards
        it as a unit of its own)."""
        return self.item_tower

    @staticmethod
    def _default_id_known(config: GenRecConfig) -> torch.Tensor:
        known = torch.zeros(config.num_items + 1, dtype=torch.bool)
        known[1 : config.num_id_items + 1] = True
        return known

    # ----------------------------------------------------------------------------------------------------------
    # Catalog
    # ----------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def set_item_features(
        self,
        text_features: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
    ) -> None:
        """Stores the content features of catalog items `1..num_items` (rows in catalog order, no padding row), in
        the buffers' precision (float16, that of the features file)."""
        for name, values in (
            ("item_text_features", text_features),
            ("item_image_features", image_features),
            ("item_image_mask", image_mask),
        ):
            if values is None:
                continue
            buffer = getattr(self, name)
            if tuple(values.shape) != (buffer.shape[0] - 1, *buffer.shape[1:]):
                raise ValueError(
                    f"{name[5:]} must have shape {(buffer.shape[0] - 1, *buffer.shape[1:])}, got {tuple(values.shape)}"
                )
            buffer[1:] = values.to(buffer.device, buffer.dtype)

    def fit_content_whitening(self) -> None:
        """Fits the item tower's whitening of text and image features on the catalog's features (images: items that
        have one); training calls it once, before the first step. Whitened MiniLM features lift Scientific test
        NDCG@10 of the gated model by ~3% (benchmarks/README.md)."""
        tower = self.item_tower
        if tower.text_whitening is not None:
            tower.text_whitening.fit(self.item_text_features[1:])
        if tower.image_whitening is not None and int(self.item_image_mask[1:].sum()) >= 2:
            tower.image_whitening.fit(self.item_image_features[1:][self.item_image_mask[1:]])

    @torch.no_grad()
    def set_item_popularity(self, counts: torch.Tensor, mark_unseen_as_unknown: bool = True) -> None:
        """Stores training interaction counts per catalog item (no padding row).

        With `mark_unseen_as_unknown`, items never seen in training lose their (untrained) ID embedding and are
        embedded from content alone, like cold items.
        """
        if counts.shape != (self.config.num_items,):
            raise ValueError(f"counts must have shape ({self.config.num_items},), got {tuple(counts.shape)}")
        self.item_popularity[1:] = counts.to(self.item_popularity)
        if mark_unseen_as_unknown:
            self.item_id_known.copy_(self._default_id_known(self.config).to(self.item_id_known.device))
            self.item_id_known[1:] &= counts.to(self.item_id_known.device) > 0

    @torch.no_grad()
    def add_items(
        self,
        text_features: torch.Tensor | None = None,
        image_features: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
    ) -> torch.LongTensor:
        """Appends items embedded from content alone (no retraining); returns their new catalog indices."""
        sizes = {len(x) for x in (text_features, image_features, image_mask) if x is not None}
        if len(sizes) != 1:
            raise ValueError("add_items needs at least one feature tensor, all with the same number of rows")
        (count,) = sizes
        first_new = self.config.num_items + 1

        def grow(name: str, values: torch.Tensor | None) -> None:
            buffer = getattr(self, name)
            if values is None:
                values = buffer.new_zeros((count, *buffer.shape[1:]))
            elif tuple(values.shape[1:]) != tuple(buffer.shape[1:]):
                raise ValueError(f"{name[5:]} rows must have shape {tuple(buffer.shape[1:])}")
            self._buffers[name] = torch.cat([buffer, values.to(buffer.device, buffer.dtype)])

        grow("item_text_features", text_features)
        grow("item_image_features", image_features)
        grow("item_image_mask", image_mask)
        grow("item_id_known", None)
        grow("item_popularity", None)
        self.config.num_items += count
        return torch.arange(first_new, first_new + count, device=self.item_popularity.device)

    # ----------------------------------------------------------------------------------------------------------
    # The features file
    # ----------------------------------------------------------------------------------------------------------
    def _item_features_layout(self) -> dict[str, tuple[torch.dtype, tuple[int, ...]]]:
        """Dtype and shape of each tensor of the features file (and content buffer), as the config implies them."""
        rows, config = self.config.num_items + 1, self.config
        return {
            "text_features": (FEATURE_DTYPE, (rows, config.text_feature_dim)),
            "image_features": (FEATURE_DTYPE, (rows, config.image_feature_dim)),
            "image_mask": (torch.bool, (rows,)),
        }

    @contextlib.contextmanager
    def item_features_kept_in(self, folder: str | os.PathLike) -> Iterator[None]:
        """Within the block, `save_pretrained` keeps the content features in `folder` (written there once, unless it
        already holds them) and each saved config refers to that file by relative name: what `GenRecTrainer` does for
        its checkpoints, `run/checkpoint-N` referring to `run/item_features.safetensors` as
        `../item_features.safetensors`, so a checkpoint holds only weights and training state."""
        previous, self._item_features_home = self._item_features_home, folder
        try:
            yield
        finally:
            self._item_features_home = previous

    def save_pretrained(self, save_directory: str | os.PathLike, *args, is_main_process: bool = True, **kwargs):
        """`PreTrainedModel.save_pretrained`, plus the catalog's content features in `item_features.safetensors`
        (float16, row 0 padding; not written again when the file there already holds the same bytes), whose name and
        SHA-256 go into config.json (`item_features_file`, `item_features_sha256`). See `item_features_kept_in` for
        folders that share one file."""
        if is_main_process:
            path = Path(self._item_features_home or save_directory) / ITEM_FEATURES_FILE
            layout = self._item_features_layout()
            features = {name: getattr(self, buffer).to(layout[name][0]) for name, buffer in FEATURE_BUFFERS.items()}
            digest = features_sha256(features)
            if not holds(path, digest):
                with atomic_path(path) as partial:  # one rename: a model mapping the old file keeps reading it whole
                    write_features(partial, features, digest)
                remember(path, digest)
            self.config.item_features_sha256 = digest
            self.config.item_features_file = Path(os.path.relpath(path, save_directory)).as_posix()
        return super().save_pretrained(save_directory, *args, is_main_process=is_main_process, **kwargs)

    def _get_files_timestamps(self, working_dir: str | os.PathLike) -> dict[str, float]:
        # `save_pretrained(push_to_hub=True)` uploads the files its save changed; the features file is written (or
        # kept) before the parent looks, and belongs to every push all the same.
        timestamps = super()._get_files_timestamps(working_dir)
        timestamps.pop(ITEM_FEATURES_FILE, None)
        return timestamps

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`, then the catalog's content features memory-mapped from the file
        config.json names, found like the weights: in the folder, or fetched from the Hub through transformers'
        cached-file utilities (cache, offline mode, `revision`, `token`). A missing file, or one whose SHA-256 or
        shapes do not match config.json, raises an error naming it."""
        loaded = super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # `output_loading_info=True`
        if pretrained_model_name_or_path is not None:
            model._load_item_features(
                str(pretrained_model_name_or_path), {k: kwargs[k] for k in HUB_KWARGS if k in kwargs}
            )
        return loaded

    def _load_item_features(self, name_or_path: str, hub_kwargs: dict) -> None:
        # the commit the config came from, so that weights, config and features match
        hub_kwargs = {
            **hub_kwargs,
            "revision": getattr(self.config, "_commit_hash", None) or hub_kwargs.get("revision"),
        }
        if self.config.item_features_sha256 is None:  # saved before the features had their own file
            logger.warning(
                "%s keeps its content features in its weights (saved by an older version of this code): "
                "save_pretrained stores them once in %s",
                name_or_path,
                ITEM_FEATURES_FILE,
            )
            with safe_open(cached_file(name_or_path, SAFE_WEIGHTS_NAME, **hub_kwargs), "pt") as weights:
                features = {name: weights.get_tensor(buffer) for name, buffer in FEATURE_BUFFERS.items()}
        else:
            path = self._item_features_path(name_or_path, hub_kwargs)
            features = map_features(path, self._item_features_layout(), self.config.item_features_sha256)
        for name, buffer in FEATURE_BUFFERS.items():
            current = getattr(self, buffer)
            self._buffers[buffer] = features[name].to(current.device, current.dtype)  # no copy on the CPU

    def _item_features_path(self, name_or_path: str, hub_kwargs: dict) -> str:
        """Local path of the features file of the model folder (or Hub repo) `name_or_path`."""
        hub_kwargs = dict(hub_kwargs)
        location = posixpath.normpath(
            posixpath.join(hub_kwargs.pop("subfolder", "") or "", self.config.item_features_file)
        )
        if os.path.isdir(name_or_path):
            path = os.path.join(name_or_path, location)
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{os.path.normpath(path)} not found: it holds the content features of the model in {name_or_path} "
                    f"(config.item_features_file={self.config.item_features_file!r}). A Trainer checkpoint refers to "
                    "the file of its run folder: load it inside that folder, or copy the file beside it."
                )
            return path
        if location.startswith("../"):
            raise ValueError(f"{name_or_path}: config.item_features_file points outside the repository ({location})")
        folder, filename = posixpath.split(location)
        try:
            return cached_file(name_or_path, filename, subfolder=folder, **hub_kwargs)
        except OSError as error:
            raise OSError(f"the content features {location} of {name_or_path} cannot be fetched: {error}") from error

    def _item_tower_inputs(self, item_indices: torch.LongTensor) -> tuple[torch.Tensor, ...]:
        dtype = self.position_embeddings.dtype  # the stored float16 rows are upcast as they are gathered
        return (
            item_indices,
            self.item_text_features[item_indices].to(dtype),
            self.item_image_features[item_indices].to(dtype),
            self.item_image_mask[item_indices],
            self.item_id_known[item_indices],
        )

    def embed_items(self, item_indices: torch.LongTensor) -> torch.Tensor:
        """Item-tower vectors (not normalised) of catalog indices of any shape."""
        return self.item_tower(*self._item_tower_inputs(item_indices))

    def catalog_embeddings(self, chunk_size: int = 65536) -> torch.Tensor:
        """Item-tower vectors of every catalog row (row 0, padding, included), shape `(num_items + 1, d)`.

        The same table embeds history items (times `sqrt(hidden_size)`) and scores candidates by dot product.
        """
        indices = torch.arange(self.config.num_items + 1, device=self.item_popularity.device)
        return torch.cat([self.embed_items(chunk) for chunk in indices.split(chunk_size)])

    # ----------------------------------------------------------------------------------------------------------
    # User tower
    # ----------------------------------------------------------------------------------------------------------
    def position_ids(self, attention_mask: torch.Tensor) -> torch.LongTensor:
        """Position of every history slot, counted back from the most recent item (0), so the end of a history
        looks the same whatever its length (as with left padding)."""
        slots = torch.arange(attention_mask.shape[1], device=attention_mask.device).expand_as(attention_mask)
        lengths = attention_mask.long().sum(dim=1, keepdim=True)
        return (lengths - 1 - slots).clamp(min=0)

    def encode_histories(
        self, item_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Interest vectors at every position and at each history's last item.

        Histories are right-padded with index 0 and at most `max_seq_len` long (see `GenRecProcessor`). Item vectors
        enter times `sqrt(hidden_size)`, so that at initialisation they outweigh the learned positions (without it,
        Beauty valid NDCG@10 falls from 0.063 to 0.037; benchmarks/README.md).
        """
        if item_ids.shape[1] > self.config.max_seq_len:
            raise ValueError(
                f"item_ids has {item_ids.shape[1]} positions but max_seq_len is {self.config.max_seq_len}; "
                "truncate histories to their most recent items first"
            )
        if attention_mask is None:
            attention_mask = item_ids != self.config.pad_item_id
        items = self.embed_items(item_ids) * math.sqrt(self.config.hidden_size)
        hidden = self.embedding_dropout(items + self.position_embeddings[self.position_ids(attention_mask)])
        for layer in self.layers:
            hidden = layer(hidden)
        interests = self.final_norm(hidden)
        last_position = (attention_mask.long().sum(dim=1) - 1).clamp(min=0)
        last = interests[torch.arange(item_ids.shape[0], device=item_ids.device), last_position]
        return interests, last

    def forward(
        self,
        item_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        num_items_in_batch: int | torch.Tensor | None = None,
    ) -> GenRecOutput:
        r"""
        Args:
            item_ids (`torch.LongTensor` of shape `(batch_size, sequence_length)`):
                Right-padded histories of catalog indices (0 is padding).
            attention_mask (`torch.Tensor` of shape `(batch_size, sequence_length)`, *optional*):
                1 for real items, 0 for padding. Defaults to `item_ids != 0`.
            labels (`torch.LongTensor` of shape `(batch_size, sequence_length)` or `(batch_size,)`, *optional*):
                Next item at every position (-100 or 0 where there is none), or the next item after each
                history's last position. Gives the InfoNCE loss.
            num_items_in_batch (`int` or `torch.Tensor`, *optional*):
                Number of labelled positions the loss is averaged over (all gradient-accumulation micro-batches,
                all processes). Defaults to the labelled positions of this batch.
        """
        if attention_mask is None:
            attention_mask = item_ids != self.config.pad_item_id
        interests, last = self.encode_histories(item_ids, attention_mask)
        loss = None
        if labels is not None:
            queries, targets = (last, labels) if labels.dim() == 1 else (interests, labels)
            keep = targets > 0
            denominator = keep.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
            loss = self._info_nce(queries[keep], targets[keep]) / denominator
        logits = None
        if not self.training:
            logits = catalog_scores(last, self.catalog_embeddings())
        return GenRecOutput(loss=loss, logits=logits, interest_embeds=interests, last_interest_embeds=last)

    def _info_nce(self, queries: torch.Tensor, targets: torch.LongTensor) -> torch.Tensor:
        if self.config.loss_negatives == "full":
            return full_catalog_info_nce(queries, self.catalog_embeddings(), targets, self.config.loss_chunk_size)
        num_items = self.config.num_items
        uniform = torch.randint(1, num_items + 1, (self.config.num_sampled_negatives,), device=targets.device)
        in_batch = gather_across_processes(targets)
        candidates = torch.unique(torch.cat([in_batch, uniform]))
        log_q = sampling_log_q(candidates, self.item_popularity, in_batch.numel(), uniform.numel(), num_items)
        return sampled_info_nce(queries, targets, candidates, self.embed_items(candidates), log_q)

    # ----------------------------------------------------------------------------------------------------------
    # Inference
    # ----------------------------------------------------------------------------------------------------------
    def score_histories(
        self,
        item_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        catalog: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Float32 scores `(batch, num_items + 1)` of each history's last interest vector against the catalog.

        Column 0 (padding) is `-inf`. An empty history has no interest vector and is scored by training popularity;
        the second output flags those rows. `catalog` may pass precomputed `catalog_embeddings()`.
        """
        if attention_mask is None:
            attention_mask = item_ids != self.config.pad_item_id
        catalog = self.catalog_embeddings() if catalog is None else catalog
        _, last = self.encode_histories(item_ids, attention_mask)
        scores = catalog_scores(last, catalog)
        empty = ~attention_mask.bool().any(dim=1)
        scores[empty] = popularity_scores(self.item_popularity)
        return scores, empty

    @torch.no_grad()
    def recommend(
        self,
        item_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        k: int = 10,
        exclude_seen: bool = True,
        catalog: torch.Tensor | None = None,
    ) -> GenRecRecommendations:
        """Top-`k` catalog items for each right-padded history.

        Items already in a history are removed when `exclude_seen`; an empty history gets the training popularity
        ranking, flagged in `popularity_fallback`. `catalog` may pass precomputed `catalog_embeddings()`.
        """
        if attention_mask is None:
            attention_mask = item_ids != self.config.pad_item_id
        scores, empty = self.score_histories(item_ids, attention_mask, catalog)
        if exclude_seen:
            scores = exclude_history(scores, item_ids, attention_mask)
        indices, values = top_k(scores, k)
        return GenRecRecommendations(item_indices=indices, scores=values, popularity_fallback=empty)

    # ----------------------------------------------------------------------------------------------------------
    # Explanations: the contract every head implements (the inference layer relies on it)
    # ----------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def similar_items(
        self, item_indices: torch.LongTensor, k: int = 10, catalog: torch.Tensor | None = None
    ) -> GenRecSimilarItems:
        """The `k` catalog items closest to each item of `item_indices` `(num_queries,)`, by cosine similarity of
        their item-tower vectors (the space histories are embedded in); items added with `add_items` included.
        `k` is capped at the other items. `catalog` may pass precomputed `catalog_embeddings()`."""
        catalog = F.normalize((self.catalog_embeddings() if catalog is None else catalog).float(), dim=-1)
        queries = item_indices.to(catalog.device)[:, None]
        scores = exclude_history(catalog_scores(catalog[queries[:, 0]], catalog), queries, torch.ones_like(queries))
        indices, values = top_k(scores, min(k, len(catalog) - 2))  # neither padding nor the item itself
        return GenRecSimilarItems(item_indices=indices, scores=values)

    @torch.no_grad()
    def content_share(self, item_indices: torch.LongTensor) -> torch.Tensor:
        """Share of each item's fused vector that comes from its content, `|content| / (|content| + |ID|)` of the two
        parts the item tower sums (`GenRecItemTower.components`); same shape as `item_indices`."""
        parts = self.item_tower.components(*self._item_tower_inputs(item_indices))
        content_norm, id_norm = (
            part.float().norm(dim=-1) if part is not None else torch.zeros(item_indices.shape, device=self.device)
            for part in parts
        )
        return content_norm / (content_norm + id_norm).clamp(min=torch.finfo(torch.float32).tiny)

    @torch.no_grad()
    def explain(
        self,
        item_ids: torch.LongTensor,
        item_indices: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
    ) -> GenRecExplanation:
        """Why each history scores `item_indices` `(batch_size, num_explained)` (or `(batch_size,)`) as it does:
        leave-one-out contributions of every history position, computed in one batch (each history with each of
        its positions removed), and the content share of each explained item. See [`GenRecExplanation`]."""
        if attention_mask is None:
            attention_mask = item_ids != self.config.pad_item_id
        mask = attention_mask.bool()
        item_indices = item_indices[:, None] if item_indices.dim() == 1 else item_indices
        batch, length = item_ids.shape
        histories, masks = leave_one_out_histories(item_ids, mask)
        _, last = self.encode_histories(histories, masks)
        vectors = self.embed_items(item_indices)
        scores = torch.einsum("bvd,bmd->bmv", last.view(batch, length + 1, -1), vectors).float()
        contributions = leave_one_out_contributions(scores, mask)
        full = scores[..., 0]
        empty = ~mask.any(dim=1)
        full[empty] = popularity_scores(self.item_popularity)[item_indices[empty]]
        return GenRecExplanation(
            scores=full, contributions=contributions, content_share=self.content_share(item_indices)
        )


__all__ = [
    "GenRecExplanation",
    "GenRecModel",
    "GenRecOutput",
    "GenRecPreTrainedModel",
    "GenRecRecommendations",
    "GenRecSimilarItems",
]

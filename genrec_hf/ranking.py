"""Every ranking in genrec_hf: scores against the catalog, history exclusion, top-k and tie-aware target ranks.

Catalog row 0 is padding: it is never a candidate. Plain torch only, so the model ships this file as remote code.

Target ranks resolve ties by their expectation under random tie-breaking: with `h` items scoring strictly higher
than the target and `t` other items scoring exactly as high,

    rank = h + 1 + t / 2

which is unbiased, unlike the optimistic `h + 1` (a model scoring everything equally would rank first). Ranks are
therefore float tensors, and a tied rank such as 2.5 enters HR@K and NDCG@K as it is.
"""

import torch

PAD_ROW = 0
_NEG_INF = float("-inf")


def catalog_scores(queries: torch.Tensor, catalog: torch.Tensor) -> torch.Tensor:
    """Float32 dot-product scores `queries @ catalog.T` of shape `(batch, rows)`; the padding column is `-inf`.

    Differentiable: the full-catalog loss scores with it too.
    """
    scores = (queries @ catalog.T).float()
    scores[:, PAD_ROW] = _NEG_INF
    return scores


def catalog_rows_scores(rows: torch.LongTensor, scores: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Float32 `(batch, num_rows)` scores that are `scores` at the candidate `rows` `(batch, candidates)` (e.g. the
    items of a beam search) and `-inf` everywhere else, the padding column included."""
    full = torch.full((rows.shape[0], num_rows), _NEG_INF, device=scores.device)
    full.scatter_(1, rows.to(scores.device), scores.float())
    full[:, PAD_ROW] = _NEG_INF
    return full


def leave_one_out_histories(
    item_ids: torch.LongTensor, attention_mask: torch.Tensor
) -> tuple[torch.LongTensor, torch.Tensor]:
    """Each right-padded history followed by its variants without one position, for leave-one-out explanations.

    Returns `item_ids` and `attention_mask` of shape `(batch * (length + 1), length)`: for every history, first the
    history itself, then variant `j` that drops position `j` (later items move up one slot, the last slot is padding).
    """
    mask = attention_mask.bool()
    length = item_ids.shape[1]
    slots = torch.arange(length, device=item_ids.device)
    source = slots[None, :] + (slots[None, :] >= slots[:, None]).long()  # variant j, slot t -> original slot
    padded_ids = torch.nn.functional.pad(item_ids, (0, 1), value=PAD_ROW)
    padded_mask = torch.nn.functional.pad(mask, (0, 1), value=False)
    histories = torch.cat([item_ids[:, None], padded_ids[:, source]], dim=1).flatten(0, 1)
    masks = torch.cat([mask[:, None], padded_mask[:, source]], dim=1).flatten(0, 1)
    return histories, masks


def leave_one_out_contributions(scores: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Contributions `(batch, items, length)` of every history position from the scores `(batch, items, length + 1)`
    of the [`leave_one_out_histories`] (whole history first): the full score minus the score without the position.

    Padding positions contribute 0; in a one-item history the item's contribution is the whole score (no history is
    left to score without it).
    """
    mask = attention_mask.bool()
    full = scores[..., 0]
    contributions = full[..., None] - scores[..., 1:]
    single = (mask.sum(dim=1) == 1)[:, None, None]
    return torch.where(single, full[..., None], contributions).masked_fill(~mask[:, None, :], 0.0)


def popularity_scores(item_counts: torch.Tensor) -> torch.Tensor:
    """Interaction counts per catalog row `(rows,)` as float scores; the padding row is `-inf`."""
    scores = item_counts.float().clone()
    scores[PAD_ROW] = _NEG_INF
    return scores


def history_mask(item_ids: torch.Tensor, num_rows: int) -> torch.Tensor:
    """Boolean `(batch, num_rows)` mask of the items of each padded history (the padding row included)."""
    mask = torch.zeros(item_ids.shape[0], num_rows, dtype=torch.bool, device=item_ids.device)
    return mask.scatter_(1, item_ids, True)


def exclude_history(
    scores: torch.Tensor,
    item_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    candidate_rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """`scores` with each history's items (and padding) set to `-inf`.

    Args:
        scores (`torch.Tensor` of shape `(batch, rows)` or `(batch, candidates)`): Scores to filter (not modified).
        item_ids (`torch.LongTensor` of shape `(batch, length)`): Padded histories of catalog rows.
        attention_mask (`torch.Tensor` of shape `(batch, length)`): 1 for real history items.
        candidate_rows (`torch.LongTensor` of shape `(batch, candidates)`, *optional*):
            Catalog row of each score column when `scores` covers only some candidates (e.g. from an ANN index).
    """
    history = torch.where(attention_mask.bool(), item_ids, PAD_ROW).to(scores.device)
    if candidate_rows is None:
        return scores.scatter(1, history, _NEG_INF)
    seen = (candidate_rows.unsqueeze(2) == history.unsqueeze(1)).any(dim=2) | (candidate_rows == PAD_ROW)
    return scores.masked_fill(seen, _NEG_INF)


def top_k(
    scores: torch.Tensor, k: int, candidate_rows: torch.Tensor | None = None
) -> tuple[torch.LongTensor, torch.Tensor]:
    """The `k` best catalog rows of each row of `scores`, best first, and their scores.

    Without `candidate_rows`, column `j` of `scores` is catalog row `j` and the padding column is skipped (it may tie
    with excluded items at `-inf`); with it, columns are those candidates' rows. `k` is capped at the candidates.
    """
    if candidate_rows is None:
        best = scores[:, PAD_ROW + 1 :].topk(min(k, scores.shape[1] - 1), dim=1)
        return best.indices + PAD_ROW + 1, best.values
    best = scores.topk(min(k, scores.shape[1]), dim=1)
    return candidate_rows.gather(1, best.indices), best.values


def _expected_rank(higher: torch.Tensor, tied: torch.Tensor) -> torch.Tensor:
    """`higher + 1 + tied / 2`: the mean rank when the target and its `tied` competitors are ordered at random."""
    return (higher + 1).float() + tied.float() / 2


def rank_of_targets(scores: torch.Tensor, targets: torch.Tensor, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Float 1-based rank of each target among the scored items (ties: see the module docstring).

    Args:
        scores (`torch.Tensor` of shape `(batch, num_items)`):
            Score of every item for every example; higher is better.
        targets (`torch.Tensor` of shape `(batch,)`):
            Column of each example's target.
        exclude (`torch.Tensor` of shape `(batch, num_items)`, *optional*):
            Boolean mask of items removed from the ranking (set to `-inf`), such as padding or history items.
            The target column is never removed, even when the mask covers it (a target already in the history).
    """
    targets = targets[:, None]
    if exclude is not None:
        exclude = exclude.scatter(1, targets, False)
        scores = scores.masked_fill(exclude, _NEG_INF)
    target_scores = scores.gather(1, targets)
    higher = (scores > target_scores).sum(dim=1)
    tied = (scores == target_scores).sum(dim=1) - 1
    return _expected_rank(higher, tied)


def shared_score_ranks(
    scores: torch.Tensor,
    targets: torch.Tensor,
    item_ids: torch.Tensor | None = None,
    sorted_scores: torch.Tensor | None = None,
) -> torch.Tensor:
    """[`rank_of_targets`] when every example is scored by the same vector `scores` `(num_items,)` (e.g. training
    popularity), without a `(batch, num_items)` matrix: the target's place among the sorted scores, less the items of
    its history that score above or level with it.

    Args:
        scores (`torch.Tensor` of shape `(num_items,)`): The score of every item (`-inf` for padding).
        targets (`torch.Tensor` of shape `(batch,)`): Column of each example's target.
        item_ids (`torch.Tensor` of shape `(batch, length)`, *optional*):
            Padded histories whose items are removed from the ranking (the target never is); `None` removes none.
        sorted_scores (`torch.Tensor` of shape `(num_items,)`, *optional*):
            `scores` sorted ascending, for callers that rank many batches against the same scores (the sort is most
            of the cost: ~20 ms at 225k items); sorted here when not given.
    """
    ordered = scores.sort().values if sorted_scores is None else sorted_scores
    target_scores = scores[targets]
    at_most = torch.searchsorted(ordered, target_scores, right=True)
    higher = len(ordered) - at_most
    tied = at_most - torch.searchsorted(ordered, target_scores) - 1  # the target itself is not a tie
    if item_ids is not None:
        seen = item_ids.sort(dim=1).values
        first = torch.ones_like(seen, dtype=torch.bool)
        first[:, 1:] = seen[:, 1:] != seen[:, :-1]  # an item repeated in a history is removed once
        removed = first & (seen != PAD_ROW) & (seen != targets[:, None])
        seen_scores, target_scores = scores[seen], target_scores[:, None]
        higher = higher - (removed & (seen_scores > target_scores)).sum(dim=1)
        tied = tied - (removed & (seen_scores == target_scores)).sum(dim=1)
    return _expected_rank(higher, tied)


@torch.no_grad()
def ranks_from_embeddings(
    queries: torch.Tensor,
    catalog: torch.Tensor,
    targets: torch.Tensor,
    exclude_indices: list[list[int]] | None = None,
    chunk_size: int = 65536,
) -> torch.Tensor:
    """[`rank_of_targets`] for dot-product scores `queries @ catalog.T`, computed over catalog chunks.

    Memory stays at `batch x chunk_size` scores, whatever the catalog size. The target scores are computed first,
    then each chunk adds its items scoring higher than, or tied with, the target (the target's own column is skipped).
    Chunking can change the last bits of a score, so two items with bit-identical dense scores may stop tying.

    Args:
        queries (`torch.Tensor` of shape `(batch, dim)`): Query (user) vectors.
        catalog (`torch.Tensor` of shape `(num_items, dim)`): Item vectors; row `i` scores item `i`.
        targets (`torch.Tensor` of shape `(batch,)`): Row of each query's target.
        exclude_indices (`list[list[int]]`, *optional*):
            Per query, the rows removed from the ranking (padding, history). The target is never removed.
        chunk_size (`int`, *optional*, defaults to 65536): Catalog rows scored at once.
    """
    device = catalog.device
    targets = targets.to(device)
    target_scores = (queries * catalog[targets]).sum(dim=1, keepdim=True)
    # (row, column) pairs skipped in the chunks: each target's own column, then the excluded items.
    rows = torch.arange(len(queries), device=device)
    cols = targets
    if exclude_indices is not None:
        lengths = torch.tensor([len(indices) for indices in exclude_indices], device=device)
        flat = torch.tensor([i for indices in exclude_indices for i in indices], dtype=torch.long, device=device)
        rows, cols = torch.cat([rows, rows.repeat_interleave(lengths)]), torch.cat([cols, flat])
    higher = torch.zeros(len(queries), dtype=torch.long, device=device)
    tied = torch.zeros_like(higher)
    for start in range(0, len(catalog), chunk_size):
        scores = queries @ catalog[start : start + chunk_size].T
        in_chunk = (cols >= start) & (cols < start + scores.shape[1])
        scores[rows[in_chunk], cols[in_chunk] - start] = _NEG_INF
        higher += (scores > target_scores).sum(dim=1)
        tied += (scores == target_scores).sum(dim=1)
    return _expected_rank(higher, tied)


__all__ = [
    "PAD_ROW",
    "catalog_rows_scores",
    "catalog_scores",
    "exclude_history",
    "history_mask",
    "leave_one_out_contributions",
    "leave_one_out_histories",
    "popularity_scores",
    "rank_of_targets",
    "ranks_from_embeddings",
    "shared_score_ranks",
    "top_k",
]

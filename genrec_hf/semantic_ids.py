"""Semantic IDs: every item as a short tuple of codes quantized from its content vector, and the prefix trie that
keeps beam search on tuples of real catalog items.

Residual k-means (as in TIGER's RQ and GRID's default): level 0 clusters the content vectors into `codebook_size`
centroids, each next level clusters what the previous levels left unexplained (the residuals). Items whose codes
collide get one final code, a counter within their shared prefix, so every item has a unique tuple of
`num_levels + 1` codes. Plain torch, shipped with the model as remote code.
"""

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import LogitsProcessor


def quantization_inputs(
    text_features: torch.Tensor, image_features: torch.Tensor, image_mask: torch.Tensor
) -> torch.Tensor:
    """The vector quantized per item: its unit-length text and image vectors side by side (a missing photo: zeros)."""
    parts = []
    if text_features.shape[1]:
        parts.append(F.normalize(text_features.float(), dim=1))
    if image_features.shape[1]:
        parts.append(F.normalize(image_features.float(), dim=1) * image_mask[:, None].float())
    if not parts:
        raise ValueError("semantic IDs need content features (text or image); an ID-only model has none")
    return torch.cat(parts, dim=1)


def kmeans(vectors: torch.Tensor, num_clusters: int, iterations: int = 25, seed: int = 0) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding; returns `(num_clusters, dim)` centroids.

    With fewer distinct vectors than clusters, the surplus centroids repeat existing ones (they are never closer
    than their twin, so never used). An emptied cluster is re-seeded at the point farthest from its centroid.
    """
    generator = torch.Generator().manual_seed(seed)
    vectors = vectors.float()
    centroids = vectors[torch.randint(len(vectors), (1,), generator=generator)]
    closest = torch.cdist(vectors, centroids).squeeze(1) ** 2
    for _ in range(1, num_clusters):
        weights = closest if closest.sum() > 0 else torch.ones_like(closest)
        pick = torch.multinomial(weights, 1, generator=generator)
        centroids = torch.cat([centroids, vectors[pick]])
        closest = torch.minimum(closest, torch.cdist(vectors, vectors[pick]).squeeze(1) ** 2)
    for _ in range(iterations):
        distances = torch.cdist(vectors, centroids)
        assignment = distances.argmin(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assignment, vectors)
        counts = torch.bincount(assignment, minlength=num_clusters)
        updated = sums / counts.clamp(min=1)[:, None]
        empty = counts == 0
        if empty.any():  # more empty clusters than points: the farthest points repeat (twins stay unused)
            num_empty = int(empty.sum())
            farthest = distances.gather(1, assignment[:, None]).squeeze(1).topk(min(num_empty, len(vectors))).indices
            updated[empty] = vectors[farthest[torch.arange(num_empty) % len(farthest)]]
        if torch.allclose(updated, centroids):
            break
        centroids = updated
    return centroids


def residual_codes(vectors: torch.Tensor, codebooks: torch.Tensor) -> torch.LongTensor:
    """Codes `(n, num_levels)` of `vectors` under residual `codebooks` `(num_levels, codebook_size, dim)`."""
    residual = vectors.float().to(codebooks.device)
    codes = []
    for codebook in codebooks:
        level_codes = torch.cdist(residual, codebook).argmin(dim=1)
        residual = residual - codebook[level_codes]
        codes.append(level_codes)
    return torch.stack(codes, dim=1)


def disambiguation_codes(prefixes: torch.LongTensor, taken: torch.LongTensor | None = None) -> torch.LongTensor:
    """The final code of each row: 0, 1, 2, ... among rows sharing its prefix, after the codes already `taken`.

    `taken` holds existing full code tuples `(m, num_levels + 1)` (e.g. the catalog's, when items are added).
    """
    counters: dict[tuple[int, ...], int] = {}
    if taken is not None:
        for row in taken.tolist():
            counters[tuple(row[:-1])] = max(counters.get(tuple(row[:-1]), 0), row[-1] + 1)
    final = []
    for prefix in map(tuple, prefixes.tolist()):
        final.append(counters.get(prefix, 0))
        counters[prefix] = final[-1] + 1
    return torch.tensor(final, dtype=torch.long)


@dataclass
class SemanticIDs:
    """The semantic IDs of a catalog: `codes` `(num_items, num_levels + 1)` in catalog order, the residual
    `codebooks` `(num_levels, codebook_size, dim)` that code new items, and how the quantization went."""

    codes: torch.LongTensor
    codebooks: torch.Tensor
    stats: dict = field(default_factory=dict)

    @classmethod
    def fit(
        cls, vectors: torch.Tensor, num_levels: int = 3, codebook_size: int = 256, iterations: int = 25, seed: int = 0
    ) -> "SemanticIDs":
        """Residual k-means over the item `vectors` (one row per catalog item, catalog order)."""
        start = time.perf_counter()
        residual, codebooks = vectors.float(), []
        for level in range(num_levels):
            codebook = kmeans(residual, codebook_size, iterations=iterations, seed=seed + level)
            residual = residual - codebook[torch.cdist(residual, codebook).argmin(dim=1)]
            codebooks.append(codebook)
        codebooks = torch.stack(codebooks)
        prefixes = residual_codes(vectors, codebooks)
        codes = torch.cat([prefixes, disambiguation_codes(prefixes)[:, None]], dim=1)
        _, group_sizes = torch.unique(prefixes, dim=0, return_counts=True)
        stats = {
            "items": len(vectors),
            "num_levels": num_levels,
            "codebook_size": codebook_size,
            "collision_rate": float(group_sizes[group_sizes > 1].sum()) / max(len(vectors), 1),
            "codebook_usage": [len(torch.unique(prefixes[:, level])) / codebook_size for level in range(num_levels)],
            "max_final_code": int(codes[:, -1].max()) if len(codes) else 0,
            "relative_residual": float(residual.norm() / vectors.float().norm().clamp(min=1e-12)),
            "seconds": round(time.perf_counter() - start, 3),
        }
        return cls(codes, codebooks, stats)


class SemanticIDTrie:
    """Prefix trie over the token tuples of catalog items: which token may follow a generated prefix, and which item
    a complete tuple names. Rows of `item_tokens` are catalog rows; row 0 (padding) is left out."""

    def __init__(self, item_tokens: torch.LongTensor, vocab_size: int):
        self.vocab_size = vocab_size
        self.num_rows = len(item_tokens)
        children: dict[tuple[int, ...], set[int]] = {}
        self.items: dict[tuple[int, ...], int] = {}
        for row, tokens in enumerate(item_tokens.tolist()[1:], start=1):
            for depth in range(len(tokens)):
                children.setdefault(tuple(tokens[:depth]), set()).add(tokens[depth])
            self.items[tuple(tokens)] = row
        self._children = children
        self._masks: dict[tuple[int, ...], torch.Tensor] = {}
        self._dead_end = torch.zeros(vocab_size, dtype=torch.bool)
        # Each tuple as one integer (its tokens as digits in base vocab_size), sorted, to look up a batch at once.
        self.tokens_per_item = item_tokens.shape[1]
        keys = self._tuple_keys(item_tokens[1:])
        order = torch.argsort(keys)
        self._sorted_keys, self._sorted_rows = keys[order], order + 1

    def allowed_mask(self, prefix: tuple[int, ...]) -> torch.Tensor:
        """Boolean `(vocab_size,)` mask of the tokens that extend `prefix` towards a catalog item."""
        mask = self._masks.get(prefix)
        if mask is None:
            allowed = self._children.get(prefix)
            if allowed is None:
                return self._dead_end
            mask = torch.zeros(self.vocab_size, dtype=torch.bool)
            mask[list(allowed)] = True
            self._masks[prefix] = mask
        return mask

    def item(self, tokens: tuple[int, ...]) -> int | None:
        """Catalog row of a complete token tuple, or `None`."""
        return self.items.get(tokens)

    def _tuple_keys(self, tuples: torch.LongTensor) -> torch.LongTensor:
        powers = self.vocab_size ** torch.arange(self.tokens_per_item - 1, -1, -1, device=tuples.device)
        return (tuples * powers).sum(dim=-1)

    def completed_items(self, token_ids: torch.LongTensor) -> torch.LongTensor:
        """Catalog row of the item each position of `token_ids` `(batch, length)` completes (the position holds the
        item's last token and its other tokens come just before it), 0 elsewhere."""
        rows = torch.zeros_like(token_ids)
        width = self.tokens_per_item
        if token_ids.shape[1] < width or not len(self._sorted_keys):
            return rows
        keys = self._tuple_keys(token_ids.unfold(1, width, 1))
        sorted_keys, sorted_rows = self._sorted_keys.to(keys.device), self._sorted_rows.to(keys.device)
        at = torch.searchsorted(sorted_keys, keys).clamp(max=len(sorted_keys) - 1)
        rows[:, width - 1 :] = torch.where(sorted_keys[at] == keys, sorted_rows[at], 0)
        return rows


class SemanticIDConstraint(LogitsProcessor):
    """Masks every token that would leave the trie, so beam search only completes tuples of catalog items.

    `prompt_length` is the (padded) prompt width: tokens after it are the generated prefix of each beam.
    """

    def __init__(self, trie: SemanticIDTrie, prompt_length: int):
        self.trie = trie
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        prefixes = input_ids[:, self.prompt_length :].tolist()
        allowed = torch.stack([self.trie.allowed_mask(tuple(prefix)) for prefix in prefixes]).to(scores.device)
        return scores.masked_fill(~allowed, float("-inf"))


__all__ = [
    "SemanticIDConstraint",
    "SemanticIDTrie",
    "SemanticIDs",
    "disambiguation_codes",
    "kmeans",
    "quantization_inputs",
    "residual_codes",
]

"""The next-item recommendation pipeline as shipped beside a model: `pipeline(model=<folder or repo id>,
trust_remote_code=True)` works in a Python without genrec_hf.

`save_for_hub` copies this file (it imports only torch, transformers and the standard library) and names
`NextItemRecommendationPipeline` in config.json's `custom_pipelines`. Where genrec_hf can be imported, that name is
genrec_hf's installed pipeline (`genrec_hf.inference.pipeline`, built on the class below, adding a FAISS index and
items given by their content), as installed classes win over remote code for `AutoModel`. Elsewhere it is
`GenRecRecommendationPipeline`, which ranks with the model's own `recommend` over the whole catalog and titles the
items from the `item_catalog.json` saved beside the model (fetched from the Hub for a repo id).

```python
from transformers import pipeline

recommender = pipeline(model="<namespace>/<model-name>", trust_remote_code=True, revision="<commit>")
recommender(["B0001", "B0002"], k=5)          # one history -> [{"parent_asin", "score", "title"}, ...]
recommender([["B0001"], ["B0003"]], batch_size=2)
```

Because the folder names its own pipeline, transformers asks for `trust_remote_code=True` to load it through
`pipeline(...)`, also where genrec_hf is installed.
"""

import json
from collections.abc import Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Dataset
from transformers import Pipeline
from transformers.pipelines.pt_utils import PipelineDataset, PipelineIterator
from transformers.utils import cached_file

TASK = "next-item-recommendation"
CATALOG_METADATA = "item_catalog.json"


@dataclass
class History:
    """One history, wrapped so that `Pipeline.__call__` does not take its items for a batch of inputs."""

    items: Sequence


class GenRecRecommendationPipeline(Pipeline):
    """Next-item recommendation with a GenRec model (either head) and its processor.

    Call arguments: `k` (default 10), `exclude_seen` (default True: items of the history are never recommended),
    `return_flags` (default False: a list of `{"parent_asin", "score", "title"}` per history; True: a dict that adds
    `unknown_items`, `popularity_fallback` and `truncated`). An unknown `parent_asin` is left out of its history and
    listed in `unknown_items`; an empty history gets the training popularity ranking.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ValueError(f"the {TASK} pipeline needs the model's GenRecProcessor (processor=...)")
        self._titles = None

    def _sanitize_parameters(self, k=None, exclude_seen=None, return_flags=None, **kwargs):
        forward = {key: value for key, value in (("k", k), ("exclude_seen", exclude_seen)) if value is not None}
        postprocess = {"return_flags": return_flags} if return_flags is not None else {}
        return {}, forward, postprocess

    def __call__(self, inputs, **kwargs):
        """`inputs`: one history (a list of `parent_asin`s), a list of such histories, or a dataset or iterable of
        histories (e.g. `KeyDataset(dataset, "history")`: the results are then streamed)."""
        if is_history(inputs):
            return super().__call__(History(inputs), **kwargs)
        if isinstance(inputs, (list, tuple)) and all(is_history(h) for h in inputs):
            return super().__call__([History(h) for h in inputs], **kwargs)
        if isinstance(inputs, (Dataset, Iterable)) and not isinstance(inputs, (str, bytes, Mapping, list, tuple)):
            return super().__call__((History(h) for h in inputs), **kwargs)
        raise TypeError(f"{TASK} expects a list of parent_asins (or item dicts), or a list or dataset of such lists")

    def get_iterator(self, inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params):
        """The base class's iterator, batching histories into lists (its own collate function pads tokenizer
        outputs, which a history is not)."""
        if batch_size == 1:
            return super().get_iterator(
                inputs, num_workers, batch_size, preprocess_params, forward_params, postprocess_params
            )
        sized = isinstance(inputs, Sized)
        dataset = (PipelineDataset if sized else PipelineIterator)(inputs, self.preprocess, preprocess_params)
        loader = DataLoader(
            dataset, num_workers=num_workers if sized else min(num_workers, 1), batch_size=batch_size,
            collate_fn=collate_histories,
        )  # fmt: skip
        model_iterator = PipelineIterator(loader, self.forward, forward_params, loader_batch_size=batch_size)
        return PipelineIterator(model_iterator, self.postprocess, postprocess_params)

    def preprocess(self, inputs: History) -> dict:
        for item in inputs.items:
            if not isinstance(item, str):
                raise TypeError(f"an item given by its content ({item!r}) needs genrec_hf installed; pass parent_asins")
        return {"histories": [list(inputs.items)]}

    def _forward(self, model_inputs: dict, k: int = 10, exclude_seen: bool = True) -> dict:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        max_len = min(self.processor.max_seq_len, self.model.config.max_seq_len)
        indexed = self.processor.index_histories(model_inputs["histories"], unknown_items="skip", max_len=max_len)
        seen = [set(history.all_item_ids) for history in indexed]
        # items older than the window are excluded too: ask for that many more, then filter
        extra = max(len(s.difference(h.item_ids)) for s, h in zip(seen, indexed)) if exclude_seen else 0
        batch = self.processor.pad_histories([history.item_ids for history in indexed])
        ranked = recommend(
            self.model,
            batch["item_ids"].to(self.model.device),
            batch["attention_mask"].to(self.model.device),
            k + extra,
            exclude_seen,
        )
        titles = self.titles()
        results = []
        for i, history in enumerate(indexed):
            kept = top_items(ranked, i, seen[i] if exclude_seen else set(), k)
            asins = [self.processor.item_vocab[row] for row, _ in kept]
            results.append(
                {
                    "recommendations": [
                        {"parent_asin": a, "score": s, "title": titles.get(a)} for a, (_, s) in zip(asins, kept)
                    ],
                    "unknown_items": list(dict.fromkeys(history.unknown_items)),
                    "popularity_fallback": bool(ranked.popularity_fallback[i]),
                    "truncated": history.truncated,
                }
            )
        return {"results": results}

    def postprocess(self, model_outputs: dict, return_flags: bool = False):
        result = model_outputs["results"]
        if isinstance(result, list):  # an unbatched call: the one result of its one history
            (result,) = result
        record = self.to_record(result)
        return record if return_flags else record["recommendations"]

    def to_record(self, result) -> dict:
        """The record of one history's result (`_forward` gives records already)."""
        return result

    def titles(self) -> dict[str, str]:
        """`parent_asin -> title` from the `item_catalog.json` beside the model (a folder, or its Hub repo at the
        revision the model was loaded from); empty when there is none."""
        if self._titles is None:
            self._titles = {}
            source = self.model.name_or_path
            revision = getattr(self.model.config, "_commit_hash", None)
            path = cached_file(source, CATALOG_METADATA, revision=revision, _raise_exceptions_for_missing_entries=False)
            if path is not None:
                metadata = json.loads(open(path, encoding="utf-8").read())
                self._titles = {a: t for a, t in zip(metadata["parent_asins"], metadata["titles"]) if t}
        return self._titles


def recommend(model, item_ids: torch.LongTensor, attention_mask: torch.Tensor, k: int, exclude_seen: bool):
    """`model.recommend` over the whole catalog; a generative model (`config.num_beams`) searches with at least `k`
    beams plus one per history item (history items found among the beams are dropped)."""
    with torch.no_grad():
        beams = getattr(model.config, "num_beams", None)
        if beams is None:
            return model.recommend(item_ids, attention_mask, k=k, exclude_seen=exclude_seen)
        wanted = k + (int(attention_mask.sum(dim=1).max()) if exclude_seen else 0)
        num_beams = max(beams, min(wanted, model.config.num_items))
        return model.recommend(
            item_ids, attention_mask, k=min(k, num_beams), exclude_seen=exclude_seen, num_beams=num_beams
        )


def top_items(ranked, i: int, excluded: set[int], k: int) -> list[tuple[int, float]]:
    """The best `k` `(row, score)` of history `i` in `ranked` (`GenRecRecommendations`): filled places only (score
    above `-inf`), rows of `excluded` left out."""
    rows, scores = ranked.item_indices[i].tolist(), ranked.scores[i].tolist()
    return [(row, score) for row, score in zip(rows, scores) if score != float("-inf") and row not in excluded][:k]


def is_history(value) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(item, (str, Mapping)) for item in value)


def collate_histories(batch: list[dict]) -> dict:
    return {"histories": [history for inputs in batch for history in inputs["histories"]]}


def __getattr__(name: str):
    """`NextItemRecommendationPipeline`, the class `custom_pipelines` names: genrec_hf's when it can be imported."""
    if name != "NextItemRecommendationPipeline":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from genrec_hf.inference.pipeline import NextItemRecommendationPipeline
    except ImportError:
        return GenRecRecommendationPipeline
    return NextItemRecommendationPipeline


__all__ = ["GenRecRecommendationPipeline", "TASK", "recommend", "top_items"]

"""Sentence pooling as a text encoder declares it, read from its sentence-transformers files without that library.

A sentence-transformers folder lists its modules in `modules.json`: the `Pooling` module's `config.json` (e.g.
`1_Pooling/config.json`) names the pooling (`pooling_mode_cls_token`, `pooling_mode_mean_tokens`, ...; several modes
are concatenated in sentence-transformers' order), and a `Normalize` module L2-normalises the result. A plain
transformers folder declares nothing and gets normalised mean pooling.
"""

import json
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.utils import cached_file

# sentence-transformers' `pooling_mode_*` keys, in the order it concatenates the modes
POOLING_CONFIG_KEYS = {
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
    "mean": "pooling_mode_mean_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


@dataclass(frozen=True)
class TextPooling:
    """Token states -> one vector per text: the concatenated `modes`, then L2 normalisation when `normalize`."""

    modes: tuple[str, ...] = ("mean",)
    normalize: bool = True

    def __post_init__(self):
        if not self.modes or not set(self.modes) <= set(POOLING_CONFIG_KEYS):
            raise ValueError(f"pooling modes must be some of {tuple(POOLING_CONFIG_KEYS)}, got {self.modes}")

    @classmethod
    def from_pretrained(cls, name_or_path: str, **hub_kwargs) -> "TextPooling":
        """The pooling declared by the sentence-transformers files of a folder or Hub repo; the default (normalised
        mean pooling) when it has no `modules.json`."""
        modules = _read_json(name_or_path, "modules.json", **hub_kwargs)
        if modules is None:
            return cls()
        by_type = {module["type"].rsplit(".", 1)[-1]: module for module in modules}
        normalize = "Normalize" in by_type
        if "Pooling" not in by_type:
            return cls(normalize=normalize)
        path = "/".join(filter(None, [by_type["Pooling"]["path"], "config.json"]))
        config = _read_json(name_or_path, path, **hub_kwargs)
        if config is None:
            raise ValueError(f"{name_or_path}: modules.json lists a Pooling module but {path} is missing")
        return cls(modes_from_config(config, f"{name_or_path}/{path}"), normalize)

    def output_dim(self, hidden_size: int) -> int:
        return hidden_size * len(self.modes)

    def __call__(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """`(batch, dim)` vectors from `(batch, tokens, hidden)` states; padding (mask 0) never counts."""
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        counts = mask.sum(dim=1).clamp(min=1e-9)
        pooled = []
        for mode in self.modes:
            if mode == "cls":
                pooled.append(hidden[:, 0])
            elif mode == "max":
                pooled.append(hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(dim=1).values)
            elif mode == "mean":
                pooled.append((hidden * mask).sum(dim=1) / counts)
            elif mode == "mean_sqrt_len_tokens":
                pooled.append((hidden * mask).sum(dim=1) / counts.sqrt())
            elif mode == "weightedmean":
                weights = mask * torch.arange(1, hidden.shape[1] + 1, device=hidden.device, dtype=hidden.dtype)[:, None]
                pooled.append((hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9))
            else:  # lasttoken: the last position the mask keeps, whichever side the padding is on
                positions = torch.arange(hidden.shape[1], device=hidden.device) * attention_mask.bool()
                pooled.append(hidden[torch.arange(len(hidden), device=hidden.device), positions.argmax(dim=1)])
        embeddings = torch.cat(pooled, dim=-1)
        return F.normalize(embeddings, dim=-1) if self.normalize else embeddings


def modes_from_config(config: dict, where: str = "pooling config") -> tuple[str, ...]:
    """The modes a sentence-transformers pooling config turns on (its `pooling_mode` string wins when present)."""
    if isinstance(config.get("pooling_mode"), str):
        return (config["pooling_mode"],)
    known = set(POOLING_CONFIG_KEYS.values())
    unsupported = [key for key, on in config.items() if key.startswith("pooling_mode_") and on and key not in known]
    if unsupported:
        raise ValueError(f"{where}: unsupported pooling {unsupported}")
    modes = tuple(mode for mode, key in POOLING_CONFIG_KEYS.items() if config.get(key))
    if not modes:
        raise ValueError(f"{where} turns on no pooling mode")
    return modes


def _read_json(name_or_path: str, filename: str, **hub_kwargs):
    path = cached_file(
        name_or_path,
        filename,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        **hub_kwargs,
    )
    if path is None:
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


__all__ = ["POOLING_CONFIG_KEYS", "TextPooling", "modes_from_config"]

"""CLIP's real BPE tokenizer without the Hub: rebuilt from the vocabulary file shipped in `open_clip_torch`."""

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

from transformers import CLIPTokenizer


def _bytes_to_unicode() -> list[str]:
    """The byte-level BPE alphabet (GPT-2 and CLIP): one printable character for each of the 256 bytes."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    codes, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


@lru_cache(maxsize=1)
def real_clip_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's vocab and merges, rebuilt from the `bpe_simple_vocab_16e6.txt.gz` shipped in open_clip_torch."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.origin is None:
        raise RuntimeError("open_clip_torch is not installed: `pip install --no-deps open_clip_torch`")
    bpe_path = Path(spec.origin).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(bpe_path, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    units = _bytes_to_unicode()
    tokens = units + [u + "</w>" for u in units] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def clip_tokenizer_from_open_clip(model_max_length: int = 77) -> CLIPTokenizer:
    """The `openai/clip-vit-base-patch32` tokenizer (same vocabulary and merges), built offline."""
    vocab, merges = real_clip_vocab()
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)

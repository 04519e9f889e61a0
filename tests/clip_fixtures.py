"""A small CLIP with random weights, saved and reloaded like a pretrained one, using the real CLIP BPE vocabulary."""

import gzip
import json
from functools import lru_cache
from pathlib import Path

from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer


def _bytes_to_unicode() -> list[str]:
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
    import importlib.util

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


def save_tiny_clip(folder: Path, projection_dim: int = 16, image_size: int = 32) -> Path:
    """Writes a tiny random CLIP (model, real-vocab tokenizer, PIL image processor) loadable by `from_pretrained`."""
    vocab, merges = real_clip_vocab()
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
            num_attention_heads=4, max_position_embeddings=77, bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            image_size=image_size, patch_size=8,
        ),
        projection_dim=projection_dim,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77).save_pretrained(folder)
    CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    ).save_pretrained(folder)
    (folder / "fixture.json").write_text(json.dumps({"what": "tiny random CLIP for tests"}))
    return folder

"""A small CLIP with random weights, saved and reloaded like a pretrained one, using the real CLIP BPE vocabulary."""

import json
from pathlib import Path

from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

from genrec_hf.offline_clip import clip_tokenizer_from_open_clip, real_clip_vocab


def save_tiny_clip(folder: Path, projection_dim: int = 16, image_size: int = 32) -> Path:
    """Writes a tiny random CLIP (model, real-vocab tokenizer, PIL image processor) loadable by `from_pretrained`."""
    vocab, merges = real_clip_vocab()
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=image_size,
            patch_size=8,
        ),
        projection_dim=projection_dim,
    )
    CLIPModel(config).save_pretrained(folder)
    clip_tokenizer_from_open_clip().save_pretrained(folder)
    CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    ).save_pretrained(folder)
    (folder / "fixture.json").write_text(json.dumps({"what": "tiny random CLIP for tests"}))
    return folder

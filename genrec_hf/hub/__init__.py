"""Hub artifacts: the self-contained repository folder of a GenRec model, its model card, and `publish`.

A repository is built locally by `save_for_hub` (config, safetensors weights, the catalog's content features in
`item_features.safetensors`, processor files with the item vocabulary and the encoder's tokenizer and image processor,
the `*_genrec.py` remote code with `auto_map`, `README.md` and `metrics.json`) and sent with **one** `upload_folder`
call by `publish`.

Why not the built-in push paths: `model.push_to_hub()` leaves out the processor and replaces README.md, and
`Trainer.push_to_hub()` writes a "generated_from_trainer" card. With `hub_strategy="every_save"` the Trainer pushes
checkpoints that hold config and weights but **not** `configuration_genrec.py` / `modeling_genrec.py`, so a Hub repo
whose config carries `auto_map` could not be loaded with `trust_remote_code=True`. `scripts/train.py` therefore
publishes with `publish()` at the end of training and writes its card with `build_model_card()`.

The Hub reads evaluation reports; it knows nothing of training internals.
"""

from .card import CARD_TEMPLATE, build_model_card, is_hub_model_id
from .folder import CARRIED_FILES, build_hub_folder, load_for_hub, save_for_hub
from .publish import DEFAULT_COMMIT_MESSAGE, publish
from .remote_code import register_remote_code, remote_code_registered

__all__ = [
    "CARD_TEMPLATE",
    "CARRIED_FILES",
    "DEFAULT_COMMIT_MESSAGE",
    "build_hub_folder",
    "build_model_card",
    "is_hub_model_id",
    "load_for_hub",
    "publish",
    "register_remote_code",
    "remote_code_registered",
    "save_for_hub",
]

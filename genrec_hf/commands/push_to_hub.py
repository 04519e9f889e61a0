"""`genrec-push-to-hub` / `scripts/push_to_hub.py`: publish a trained model folder to the Hub, or dry-run it."""

import logging
import os
from dataclasses import dataclass, field

from transformers import HfArgumentParser

from ..hub import DEFAULT_COMMIT_MESSAGE, build_hub_folder, publish

logger = logging.getLogger(__name__)


@dataclass
class PushToHubArguments:
    model: str = field(metadata={"help": "Folder written by training (save_pretrained; metrics.json when present)."})
    repo_id: str = field(metadata={"help": "Hub repository, `namespace/name`."})
    private: bool = field(default=False, metadata={"help": "Create the repository as private."})
    revision: str | None = field(default=None, metadata={"help": "Branch to commit to (created when missing)."})
    create_pr: bool = field(default=False, metadata={"help": "Open a pull request instead of committing."})
    dry_run: str | None = field(
        default=None, metadata={"help": "Write the folder that would be uploaded here (empty or new); upload nothing."}
    )
    token_env: str | None = field(
        default=None,
        metadata={"help": "Name of the environment variable holding the token (default: HF_TOKEN or the saved login)."},
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "Hub dataset id for the card metadata (default: metrics.json's data name)."}
    )
    license: str = field(default="apache-2.0", metadata={"help": "License of the weights."})
    commit_message: str = field(default=DEFAULT_COMMIT_MESSAGE)


def main(argv: list[str] | None = None) -> int:
    """Builds the Hub folder of `--model` and uploads it in one commit (or writes it to `--dry_run`)."""
    (args,) = HfArgumentParser(PushToHubArguments).parse_args_into_dataclasses(args=argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    card_kwargs = dict(dataset_name=args.dataset_name, license=args.license)
    if args.dry_run:
        folder = build_hub_folder(args.model, args.dry_run, repo_id=args.repo_id, **card_kwargs)
        print(f"dry run: wrote the folder for {args.repo_id} to {folder}; nothing was uploaded")
        return 0
    token = None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            raise SystemExit(f"--token_env {args.token_env}: that environment variable is not set")
    commit = publish(
        args.model,
        args.repo_id,
        token=token,
        private=True if args.private else None,
        revision=args.revision,
        create_pr=args.create_pr,
        commit_message=args.commit_message,
        **card_kwargs,
    )
    print(f"published {commit.pr_url or commit.commit_url}")
    print(
        f"load it pinned: AutoModel.from_pretrained({commit.repo_url.repo_id!r}, revision={commit.oid!r}, "
        "trust_remote_code=True)"
    )
    return 0


__all__ = ["PushToHubArguments", "main"]

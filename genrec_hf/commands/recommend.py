"""`genrec-recommend` / `scripts/recommend.py`: top-k next items for every user of a history file, as JSON lines.

Input (`--history`): one user per line, either a JSON object `{"user_id": ..., "history": ["B0...", ...]}` or
`parent_asin`s separated by whitespace or commas (the user id is then the 1-based line number). A blank line is a
user with an empty history.

Output (`--output`): JSON lines, exactly one record per input line, in input order:
`{"line", "user_id", "recommendations": [{"parent_asin", "score", "title"}, ...], "unknown_items",
"popularity_fallback", "truncated", "warnings", "error"}`. `unknown_items` were not in the catalog and were left out
of the history; `popularity_fallback` is true when no known item remained (the scores are then training counts);
`truncated` counts the oldest items left out of a history longer than the model's maximum. With `--explain`, each
recommendation adds `"because": "because of <title> and <title>"` (the history items that raise its score most;
null when none does) and `"explanation": {"content_share", "contributions": [{"parent_asin", "title",
"contribution"}, ...]}`, one contribution per history item the model saw: the score minus the score without it.
A line that cannot be read (malformed JSON, no `history` list, bad encoding...) gets `"error": "<reason>"` with empty
recommendations, and the other lines are still served.

Exit status: 0 when every line was served (warnings included), 1 when at least one line got an error record, 2 when
nothing could be served (bad arguments, unreadable model or history file).
"""

import itertools
import json
import logging
import math
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .._atomic import atomic_path
from ..inference.catalog import ItemCatalog
from ..inference.explain import check_explainable, explain_items
from ..inference.recommender import recommend_for_histories
from ._cli import CommandParser, check_paths
from ._inference import EXIT_FAILED, EXIT_LINE_ERRORS, EXIT_OK, load_model_and_processor, setup_logging

logger = logging.getLogger("genrec_hf.inference")


@dataclass
class RecommendArguments:
    model: str = field(metadata={"help": "Folder of a trained model (with item_catalog.* from precompute)."})
    history: str = field(metadata={"help": "One user per line: JSON {user_id, history} or parent_asins."})
    output: str = field(default="outputs/inference_results.txt", metadata={"help": "JSON-lines results."})
    k: int = field(default=10, metadata={"help": "Recommendations per user."})
    exclude_seen: bool = field(default=True, metadata={"help": "Leave the user's history items out of the ranking."})
    use_faiss: bool = field(default=True, metadata={"help": "Search the saved FAISS index when there is one."})
    explain: bool = field(
        default=False,
        metadata={"help": "Add why each item is recommended: 'because of <title>' and each history item's share."},
    )
    batch_size: int = field(default=256, metadata={"help": "Users scored together."})
    device: str = field(default="cpu", metadata={"help": "cpu, cuda, or auto."})


def parse_history_line(text: str, line_number: int) -> tuple[object, list[str]]:
    """`(user_id, history)` of one input line; raises `ValueError` saying why a line is malformed."""
    stripped = text.strip().lstrip("\ufeff")
    if not stripped.startswith(("{", "[")):
        return line_number, [token for token in re.split(r"[\s,]+", stripped) if token]
    try:
        record = json.loads(stripped)
    except json.JSONDecodeError as error:
        raise ValueError(f"malformed JSON ({error})") from None
    if isinstance(record, list):
        record = {"history": record}
    if "history" not in record:
        raise ValueError("JSON record has no 'history' field")
    history, user_id = record["history"], record.get("user_id", line_number)
    if not isinstance(history, list) or not all(isinstance(item, str) for item in history):
        raise ValueError("'history' must be a list of parent_asin strings")
    if isinstance(user_id, (dict, list)) or (isinstance(user_id, float) and not math.isfinite(user_id)):
        raise ValueError(f"'user_id' must be a string or a finite number, got {user_id!r}")
    return user_id, history


def _read_lines(path: str) -> Iterator[tuple[int, str | None, str | None]]:
    """`(line_number, text, decode_error)` for every line of the file (a final newline ends the last line)."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                yield number, raw.rstrip(b"\r\n").decode("utf-8"), None
            except UnicodeDecodeError as error:
                yield number, None, f"line is not UTF-8 ({error.reason} at byte {error.start})"


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name the same file (also through links)."""
    a_path, b_path = Path(a), Path(b)
    if a_path.exists() and b_path.exists():
        return os.path.samefile(a_path, b_path)
    return a_path.resolve() == b_path.resolve()


def _error_record(line: int, user_id, message: str) -> dict:
    return {
        "line": line,
        "user_id": user_id,
        "recommendations": [],
        "unknown_items": [],
        "popularity_fallback": False,
        "truncated": 0,
        "warnings": [],
        "error": message,
    }


def _serve_block(block: list[tuple[int, object, list[str]]], serve) -> list[dict]:
    """Records for parsed lines, served together; if the batch fails, each line alone (errors stay per line)."""
    try:
        results = serve([history for _, _, history in block])
        pairs = list(zip(block, results))
    except Exception as error:  # noqa: BLE001 - one bad history must not lose the other lines
        logger.warning("batch failed (%s); serving its lines one by one", error)
        pairs = []
        for entry in block:
            try:
                pairs.append((entry, serve([entry[2]])[0]))
            except Exception as line_error:  # noqa: BLE001
                pairs.append((entry, line_error))
    records = []
    for (line, user_id, _), result in pairs:
        if isinstance(result, Exception):
            records.append(_error_record(line, user_id, f"could not be served: {result}"))
        else:
            records.append({"line": line, "user_id": user_id, **result.to_dict(), "error": None})
    return records


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(RecommendArguments)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    if args.k < 1:
        parser.error(f"--k {args.k}: give at least 1 recommendation per user")
    check_paths(parser, "--model", args.model, "folder")
    check_paths(parser, "--history", args.history)
    setup_logging()
    if _same_file(args.output, args.history):
        logger.error("--output %s is the --history file: writing would destroy the input; choose another", args.output)
        return EXIT_FAILED
    try:
        model, processor = load_model_and_processor(args.model, args.device)
        catalog = ItemCatalog.for_model(model, processor, args.model, args.use_faiss)
        if args.explain:
            check_explainable(model)
        lines = _read_lines(args.history)
        first = next(lines, None)  # opens the file now, so a missing file fails before any output is written
    except (OSError, ValueError) as error:
        logger.error("recommend failed: %s", error)
        return EXIT_FAILED

    def serve(histories):
        results = recommend_for_histories(model, processor, histories, args.k, args.exclude_seen, catalog)
        if args.explain:
            items = [result.parent_asins for result in results]
            for result, explanations in zip(results, explain_items(model, processor, histories, items, catalog)):
                result.explanations = explanations
        return results

    counts = {"lines": 0, "errors": 0, "unknown": 0, "popularity_fallback": 0, "truncated": 0}
    output = Path(args.output)
    # Written beside the output and renamed into place when complete: a failed run leaves no partial file.
    with atomic_path(output) as partial, open(partial, "w", encoding="utf-8") as sink:
        block, pending = [], {}

        def flush():
            served = {record["line"]: record for record in _serve_block(block, serve)} if block else {}
            for line in sorted({**pending, **served}):
                record = served.get(line) or pending[line]
                counts["lines"] += 1
                counts["errors"] += record["error"] is not None
                counts["unknown"] += bool(record["unknown_items"])
                counts["popularity_fallback"] += record["popularity_fallback"]
                counts["truncated"] += bool(record["truncated"])
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
            block.clear()
            pending.clear()

        for number, text, decode_error in itertools.chain([first] if first else [], lines):
            try:
                if decode_error:
                    raise ValueError(decode_error)
                user_id, history = parse_history_line(text, number)
                block.append((number, user_id, history))
            except ValueError as error:
                pending[number] = _error_record(number, None, str(error))
            if len(block) + len(pending) >= args.batch_size:
                flush()
        flush()
    print(
        f"{counts['lines']} lines -> {output}: {counts['lines'] - counts['errors']} served, {counts['errors']} errors; "
        f"{counts['unknown']} with unknown items skipped, {counts['popularity_fallback']} popularity fallbacks, "
        f"{counts['truncated']} truncated",
        file=sys.stderr,
    )
    return EXIT_LINE_ERRORS if counts["errors"] else EXIT_OK


__all__ = ["RecommendArguments", "main", "parse_history_line"]

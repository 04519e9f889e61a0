"""Schema checks for raw records and the report that counts every rejected line, per file."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field

logger = logging.getLogger(__name__)

MALFORMED = "malformed_json"
MISSING = "missing_field"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "out_of_range"
MAX_EXAMPLES = 5

STR, NUMBER, INT, STR_LIST, DICT, LIST = "str", "number", "int", "list[str]", "dict", "list"
REVIEW_SCHEMA = {"user_id": STR, "parent_asin": STR, "rating": NUMBER, "timestamp": INT}
META_SCHEMA = {"parent_asin": STR}
META_OPTIONAL = {
    "title": STR, "main_category": STR, "store": STR, "features": STR_LIST, "description": STR_LIST,
    "categories": STR_LIST, "details": DICT, "images": LIST,
}  # fmt: skip
# The 2023 schema's ranges: ratings are 1 to 5 stars (0 tolerated), timestamps Unix milliseconds before 2100.
RANGES = {"rating": (0.0, 5.0), "timestamp": (0, 4_102_444_800_000)}


def in_range(name: str, value) -> bool:
    """Whether a field's value lies in its `RANGES` interval (fields without one always do); NaN never does."""
    low, high = RANGES.get(name, (None, None))
    return low is None or low <= value <= high


def _has_type(value, expected: str) -> bool:
    """Exact JSON type check: nothing is coerced (a string timestamp or a boolean rating is wrong)."""
    if expected == STR:
        return isinstance(value, str)
    if expected == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == STR_LIST:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, dict if expected == DICT else list)


def check_record(record, required: dict[str, str], optional: dict[str, str] | None = None) -> tuple[str, str] | None:
    """The first problem of a parsed record as `(kind, field)`, or `None` when it fits the schema.

    Required fields must be present, non-null, of their type and in their `RANGES`; optional fields may be absent or
    null.
    """
    if not isinstance(record, dict):
        return MALFORMED, "<record>"
    for name, expected in required.items():
        if record.get(name) is None or record.get(name) == "":
            return MISSING, name
        if not _has_type(record[name], expected):
            return WRONG_TYPE, name
        if not in_range(name, record[name]):
            return OUT_OF_RANGE, name
    for name, expected in (optional or {}).items():
        value = record.get(name)
        if value is not None and not _has_type(value, expected):
            return WRONG_TYPE, name
    return None


@dataclass
class FileReport:
    """Counts for one input file: lines read, lines kept, rejected lines by kind with the first offenders."""

    path: str
    lines: int = 0
    valid: int = 0
    errors: Counter = field(default_factory=Counter)
    examples: list[dict] = field(default_factory=list)
    file_error: str | None = None

    def reject(self, line: int, kind: str, name: str, detail: str = "") -> None:
        self.errors[kind] += 1
        if sum(1 for e in self.examples if e["kind"] == kind) < MAX_EXAMPLES:
            self.examples.append({"line": line, "kind": kind, "field": name, "detail": detail})


@dataclass
class ValidationReport:
    """Everything the readers rejected, per file, and the kept interactions whose item has no metadata."""

    files: dict[str, FileReport] = field(default_factory=dict)
    strict: bool = False
    items_without_metadata: list[str] = field(default_factory=list)
    interactions_without_metadata: int = 0

    def file(self, path: str) -> FileReport:
        return self.files.setdefault(path, FileReport(path))

    def reject(self, path: str, line: int, kind: str, name: str, detail: str = "") -> None:
        """Counts a rejected line; in strict mode raises `ValueError` naming `file:line` and the field."""
        if self.strict:
            raise ValueError(f"{path}:{line}: {kind} ({name}){': ' + detail if detail else ''}")
        self.file(path).reject(line, kind, name, detail)

    def file_failed(self, path: str, lines_read: int, error: Exception) -> None:
        """Records a file that could not be read to the end (e.g. a truncated gzip); strict mode raises."""
        message = f"{type(error).__name__}: {error} (after {lines_read} lines, which were kept)"
        if self.strict:
            raise ValueError(f"{path}: unreadable after line {lines_read}: {type(error).__name__}: {error}")
        self.file(path).file_error = message

    @property
    def num_rejected(self) -> int:
        return sum(sum(f.errors.values()) for f in self.files.values())

    @property
    def num_failed_files(self) -> int:
        return sum(f.file_error is not None for f in self.files.values())

    def to_dict(self) -> dict:
        return {
            "files": {p: {**asdict(f), "errors": dict(f.errors)} for p, f in self.files.items()},
            "strict": self.strict,
            "items_without_metadata": self.items_without_metadata,
            "interactions_without_metadata": self.interactions_without_metadata,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ValidationReport:
        files = {p: FileReport(**{**f, "errors": Counter(f["errors"])}) for p, f in data["files"].items()}
        return cls(files, data["strict"], data["items_without_metadata"], data["interactions_without_metadata"])

    def format(self) -> str:
        """A readable summary: one line per file, then each first offender as `file:line kind (field)`."""
        lines = []
        for f in self.files.values():
            counts = ", ".join(f"{n} {k}" for k, n in sorted(f.errors.items())) or "no rejected lines"
            lines.append(f"{f.path}: {f.lines} lines, {f.valid} kept, {counts}")
            lines += [f"  {f.path}:{e['line']} {e['kind']} ({e['field']}) {e['detail']}".rstrip() for e in f.examples]
            if f.file_error:
                lines.append(f"  {f.path}: FILE ERROR {f.file_error}")
        if self.items_without_metadata:
            shown = ", ".join(self.items_without_metadata[:MAX_EXAMPLES])
            lines.append(
                f"{len(self.items_without_metadata)} items ({self.interactions_without_metadata} kept interactions) "
                f"have no metadata: {shown}{' ...' if len(self.items_without_metadata) > MAX_EXAMPLES else ''}"
            )
        return "\n".join(lines)

    def log(self) -> None:
        problems = self.num_rejected or self.num_failed_files or self.items_without_metadata
        (logger.warning if problems else logger.info)("validation report:\n%s", self.format())

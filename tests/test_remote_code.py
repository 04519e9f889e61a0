"""The folder written by `save_for_hub` loads with `trust_remote_code=True` in a Python where genrec_hf is not
importable, and reproduces the in-process scores."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from genrec_hf import GenRecConfig, GenRecModel, GenRecProcessor
from genrec_hf.hub import save_for_hub

HISTORIES = [["I003", "I017", "I003", "I042"], [], ["I050"], [f"I{i:03d}" for i in range(1, 12)]]

CHILD = textwrap.dedent(
    """
    import sys
    sys.modules["genrec_hf"] = None  # genrec_hf must not be importable here
    import json
    try:
        import genrec_hf  # noqa: F401
        blocked = False
    except ImportError:
        blocked = True
    import torch
    from transformers import AutoModel, AutoProcessor

    folder, histories = sys.argv[1], json.loads(sys.argv[2])
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    inputs = processor(histories)
    with torch.no_grad():
        logits = model(inputs["item_ids"], inputs["attention_mask"]).logits
        top = model.recommend(inputs["item_ids"], inputs["attention_mask"], k=5)
    print("RESULT " + json.dumps({
        "blocked": blocked,
        "model_module": type(model).__module__,
        "processor_module": type(processor).__module__,
        "item_ids": inputs["item_ids"].tolist(),
        "logits": logits.tolist(),
        "top": top.item_indices.tolist(),
        "genrec_loaded": [m for m in sys.modules if m.startswith("genrec_hf") and sys.modules[m] is not None],
    }))
    """
)


@pytest.fixture
def hub_folder(tmp_path, tiny_config, make_tiny_model, tiny_processor):
    model = make_tiny_model(tiny_config(item_encoder_name_or_path="tiny-clip")).eval()
    folder = save_for_hub(model, tiny_processor, tmp_path / "repo")
    return folder, model, tiny_processor


def test_save_for_hub_writes_code_and_auto_map(hub_folder):
    folder, _, _ = hub_folder
    names = {p.name for p in folder.iterdir()}
    required = {
        "config.json",
        "model.safetensors",
        "processor_config.json",
        "configuration_genrec.py",
        "modeling_genrec.py",
        "processing_genrec.py",
        "losses_genrec.py",
        "item_features.safetensors",  # the content features, beside the weights (not in them)
        "item_features_file.py",
    }
    assert required <= names, required - names
    assert "tokenizer_config.json" in names or "tokenizer.json" in names
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_genrec.GenRecConfig",
        "AutoModel": "modeling_genrec.GenRecModel",
    }
    processor_config = json.loads((folder / "processor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoProcessor": "processing_genrec.GenRecProcessor"}
    assert len(processor_config["item_vocab"]) == 51
    # the copied code imports only its flat siblings, never the package
    shipped = ("configuration_genrec.py", "modeling_genrec.py", "processing_genrec.py", "losses_genrec.py")
    for name in (*shipped, "item_features_file.py", "_atomic.py"):
        assert "genrec_hf" not in (folder / name).read_text().replace("genrec_hf:", ""), name


def test_save_for_hub_leaves_no_registration_behind(hub_folder, tmp_path):
    """Later saves (Trainer checkpoints) of the same objects carry no remote-code files."""
    _, model, processor = hub_folder
    assert GenRecModel._auto_class is None and GenRecConfig._auto_class is None and GenRecProcessor._auto_class is None
    model.save_pretrained(tmp_path / "plain")
    processor.save_pretrained(tmp_path / "plain")
    assert not (tmp_path / "plain" / "modeling_genrec.py").exists()
    assert not (tmp_path / "plain" / "processing_genrec.py").exists()


def test_save_for_hub_leaves_no_auto_map_behind(hub_folder, tmp_path):
    _, model, processor = hub_folder
    model.save_pretrained(tmp_path / "plain")
    processor.save_pretrained(tmp_path / "plain")
    assert "auto_map" not in json.loads((tmp_path / "plain" / "config.json").read_text())
    assert "auto_map" not in (tmp_path / "plain" / "processor_config.json").read_text()


def test_save_for_hub_rejects_a_different_catalog(tiny_config, make_tiny_model, tiny_processor, tmp_path):
    model = make_tiny_model(tiny_config(num_items=49))
    with pytest.raises(ValueError, match="same catalog"):
        save_for_hub(model, tiny_processor, tmp_path)


def test_remote_code_load_without_genrec_hf(hub_folder, tmp_path):
    folder, model, processor = hub_folder
    inputs = processor(HISTORIES)
    with torch.no_grad():
        expected = model(inputs["item_ids"], inputs["attention_mask"]).logits
        expected_top = model.recommend(inputs["item_ids"], inputs["attention_mask"], k=5).item_indices
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": "",
        "HF_MODULES_CACHE": str(tmp_path / "modules_cache"),
        "TRANSFORMERS_VERBOSITY": "error",
    }
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), json.dumps(HISTORIES)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, result.stdout[-2000:] + result.stderr[-2000:]
    child = json.loads(lines[-1][len("RESULT ") :])
    assert child["blocked"], "genrec_hf was importable in the child process"
    assert child["genrec_loaded"] == []
    assert child["model_module"].startswith("transformers_modules"), child["model_module"]
    assert child["processor_module"].startswith("transformers_modules"), child["processor_module"]
    assert child["item_ids"] == inputs["item_ids"].tolist()
    logits = torch.tensor(child["logits"])
    assert torch.isneginf(logits[:, 0]).all()
    torch.testing.assert_close(logits[:, 1:], expected[:, 1:], atol=1e-5, rtol=0)
    assert child["top"] == expected_top.tolist()

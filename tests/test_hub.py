"""Publishing: the Hub folder (remote code, card, metrics), `publish` with recorded Hub calls, the push CLI.

Level 1 (artifact): a clean Python without genrec_hf loads the folder and reproduces recommendations.
Level 2 (transport): `HfApi.create_repo` / `create_branch` / `upload_folder` are recorders; the token never shows.
Level 3 (opt-in, `-m hub`): a real private repo, deleted afterwards.
"""

import json
import logging
import os
import runpy
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
import yaml
from fixtures.models import TINY, build_tiny_model
from huggingface_hub import CommitInfo, HfApi, RepoUrl
from transformers import AutoModel, AutoProcessor

import genrec_hf  # noqa: F401  (registers the Auto classes)
from genrec_hf import GenRecConfig, GenRecModel, GenRecProcessor
from genrec_hf.commands.push_to_hub import main as push_to_hub_main
from genrec_hf.hub import build_model_card, publish, save_for_hub

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRET = "hf_SentinelSecretToken0123456789abcdef"
METRIC_KEYS = ("hr@5", "hr@10", "hr@20", "ndcg@5", "ndcg@10", "ndcg@20", "mrr")
HISTORIES = [["I001", "I002", "I003"], ["I010"], ["I020", "I021", "I022", "I023", "I024", "I025", "I026", "I027"]]


def _with_ci(value: float) -> dict:
    return {"value": value, "ci_low": round(value - 0.0312, 6), "ci_high": round(value + 0.0427, 6)}


def fake_metrics() -> dict:
    """A metrics.json as scripts/train.py writes it, with distinct values so a wrong cell cannot pass."""

    def section(base: float, ci: bool) -> dict:
        return {k: (_with_ci if ci else float)(round(base + i / 97, 6)) for i, k in enumerate(METRIC_KEYS)}

    return {
        "model": {"fusion": "gate", "item_encoder": "openai/clip-vit-base-patch32", "item_encoder_type": "clip"},
        "data": {
            "name": "All_Beauty",
            "split": "leave_one_out",
            "stats": {
                "users": 253,
                "items": 356,
                "interactions": 2535,
                "avg_seq_len": 10.02,
                "median_seq_len": 8,
                "density": 0.0281,
                "synthetic": False,
            },
        },
        "protocol": {
            "ranking": "full catalog",
            "exclude_history": False,
            "ties": "expected rank under random tie-breaking",
            "ci": "95% percentile bootstrap over users (1000 resamples)",
        },
        "valid": section(0.11, ci=False),
        "test": section(0.21, ci=True),
        "test_warm": {"count": 200, **section(0.31, ci=True)},
        "test_cold": {"count": 53, **section(0.051, ci=True)},
        "popularity": {"valid": section(0.013, ci=False), "test": section(0.017, ci=True)},
        "training": {
            "epochs": 2,
            "global_step": 6,
            "train_runtime_s": 1.5,
            "seed": 42,
            "best_checkpoint": None,
            "hyperparameters": {"learning_rate": 0.00037, "total_train_batch_size": 96, "optimizer": "adamw_torch"},
            "framework_versions": {"genrec_hf": "0.1.0", "transformers": "5.24.0", "torch": "2.13.0"},
        },
    }


def front_matter(readme: str) -> dict:
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("---\n", 2)[1])


def trained_tiny_model(config: GenRecConfig, make_tiny_model, steps: int = 6) -> GenRecModel:
    """A tiny model after a few optimizer steps on random histories (a plain loop), in eval mode."""
    model = make_tiny_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(7)
    model.train()
    for _ in range(steps):
        sequences = torch.randint(1, config.num_items + 1, (8, config.max_seq_len + 1), generator=generator)
        loss = model(item_ids=sequences[:, :-1], labels=sequences[:, 1:]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def recommend_json(model, processor, k: int = 5) -> dict:
    inputs = processor(HISTORIES)
    top = model.recommend(inputs["item_ids"], inputs["attention_mask"], k=k)
    return {"indices": top.item_indices.tolist(), "scores": top.scores.tolist()}


@pytest.fixture(scope="module")
def tiny_model() -> GenRecModel:
    """Trained once for the module; the tests only read it."""
    return trained_tiny_model(GenRecConfig(**TINY), build_tiny_model)


@pytest.fixture
def tiny_processor(_tiny_clip_processor) -> GenRecProcessor:
    """The session's tiny-CLIP processor itself, not a copy: the tests here never change it."""
    return _tiny_clip_processor


@pytest.fixture
def trained_dir(tmp_path, tiny_model, tiny_processor) -> Path:
    """A folder as scripts/train.py leaves it: save_pretrained model and processor, plus metrics.json."""
    folder = tmp_path / "trained"
    tiny_model.save_pretrained(folder)
    tiny_processor.save_pretrained(folder)
    (folder / "metrics.json").write_text(json.dumps(fake_metrics()))
    (folder / "training_curves.png").write_bytes(b"\x89PNG curves")
    (folder / "training_args.bin").write_bytes(b"not for the Hub")
    return folder


class HubRecorder:
    """Stands in for the Hub: records every HfApi call and keeps a copy of each uploaded folder."""

    def __init__(self, monkeypatch, tmp_path: Path):
        self.calls: list[tuple[str, dict]] = []
        self.uploads: list[Path] = []
        self.tmp_path = tmp_path
        recorder = self

        def create_repo(api, repo_id, **kwargs):
            recorder.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
            return RepoUrl(f"https://huggingface.co/{repo_id}")

        def create_branch(api, repo_id, **kwargs):
            recorder.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

        def upload_folder(api, **kwargs):
            recorder.calls.append(("upload_folder", kwargs))
            copy = recorder.tmp_path / f"uploaded_{len(recorder.uploads)}"
            shutil.copytree(kwargs["folder_path"], copy)
            recorder.uploads.append(copy)
            oid = "a" * 40
            pr_url = f"https://huggingface.co/{kwargs['repo_id']}/discussions/1" if kwargs.get("create_pr") else None
            return CommitInfo(
                commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/{oid}",
                commit_message=kwargs.get("commit_message") or "",
                commit_description="",
                oid=oid,
                pr_url=pr_url,
                _endpoint=None,
            )

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "create_branch", create_branch)
        monkeypatch.setattr(HfApi, "upload_folder", upload_folder)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def kwargs(self, name: str) -> dict:
        (found,) = [kwargs for call, kwargs in self.calls if call == name]
        return found


@pytest.fixture
def hub(monkeypatch, tmp_path) -> HubRecorder:
    return HubRecorder(monkeypatch, tmp_path)


EXPECTED_FILES = {
    "README.md",
    "_atomic.py",
    "config.json",
    "configuration_genrec.py",
    "item_content.py",
    "item_features.safetensors",
    "item_features_file.py",
    "losses_genrec.py",
    "metrics.json",
    "model.safetensors",
    "modeling_genrec.py",
    "processing_genrec.py",
    "pipeline_genrec.py",
    "ranking.py",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
}
FROM_TRAINED_DIR = EXPECTED_FILES | {"training_curves.png"}  # carried along; training_args.bin is not


def assert_secret_absent(*texts: str, folder: Path | None = None) -> None:
    for text in texts:
        assert SECRET not in text
    for path in folder.rglob("*") if folder else ():
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


# ----------------------------------------------------------------------------------------------------------------
# Level 1: the artifact
# ----------------------------------------------------------------------------------------------------------------
CHILD = r"""
import sys
sys.modules["genrec_hf"] = None  # genrec_hf must not be importable: only the repo's remote code may be used
import json
from transformers import AutoModel, AutoProcessor

folder, histories = sys.argv[1], json.loads(sys.argv[2])
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
inputs = processor(histories)
top = model.recommend(inputs["item_ids"], inputs["attention_mask"], k=5)
print(json.dumps({"indices": top.item_indices.tolist(), "scores": top.scores.tolist(),
                  "model_module": type(model).__module__, "processor_module": type(processor).__module__,
                  "items": [[processor.index_to_item(i) for i in row] for row in top.item_indices.tolist()]}))
"""


def test_save_for_hub_folder(tmp_path, tiny_model, tiny_processor):
    folder = save_for_hub(tiny_model, tiny_processor, tmp_path / "repo", metrics=fake_metrics())
    assert {p.name for p in folder.iterdir()} == EXPECTED_FILES
    assert json.loads((folder / "config.json").read_text())["auto_map"] == {
        "AutoConfig": "configuration_genrec.GenRecConfig",
        "AutoModel": "modeling_genrec.GenRecModel",
    }
    assert json.loads((folder / "processor_config.json").read_text())["auto_map"] == {
        "AutoProcessor": "processing_genrec.GenRecProcessor"
    }
    assert json.loads((folder / "metrics.json").read_text()) == fake_metrics()
    for cls in (GenRecConfig, GenRecModel, GenRecProcessor):
        assert cls._auto_class is None, "save_for_hub must leave the remote-code registration as it found it"
    # so a later plain save (a Trainer checkpoint) names no code files it does not hold
    tiny_model.save_pretrained(tmp_path / "plain")
    tiny_processor.save_pretrained(tmp_path / "plain")
    assert not any("auto_map" in path.read_text() for path in (tmp_path / "plain").glob("*.json"))

    # With genrec_hf installed the folder loads without trust_remote_code, through the installed classes.
    model = AutoModel.from_pretrained(folder).eval()
    processor = AutoProcessor.from_pretrained(folder)
    assert type(model) is GenRecModel and type(processor) is GenRecProcessor
    assert recommend_json(model, processor) == recommend_json(tiny_model, tiny_processor)


def test_dry_run_folder_loads_and_recommends_without_genrec_hf(
    monkeypatch, trained_dir, tmp_path, tiny_model, tiny_processor
):
    """Acceptance: `scripts/push_to_hub.py --dry_run` on a trained folder writes a folder that a clean Python
    (genrec_hf not importable, offline, fresh module cache) loads and uses, reproducing the recommendations."""
    dry = tmp_path / "dry"
    script = REPO_ROOT / "scripts" / "push_to_hub.py"
    monkeypatch.setattr(
        sys, "argv", [str(script), "--model", str(trained_dir), "--repo_id", "me/x", "--dry_run", str(dry)]
    )
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code == 0
    assert {p.name for p in dry.iterdir()} == FROM_TRAINED_DIR

    expected = recommend_json(tiny_model, tiny_processor)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": "", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(dry), json.dumps(HISTORIES)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    got = json.loads(child.stdout.strip().splitlines()[-1])
    assert got["model_module"].startswith("transformers_modules.")
    assert got["processor_module"].startswith("transformers_modules.")
    assert got["indices"] == expected["indices"]
    assert torch.allclose(torch.tensor(got["scores"]), torch.tensor(expected["scores"]), atol=1e-6, rtol=0)
    assert got["items"] == [[tiny_processor.index_to_item(i) for i in row] for row in expected["indices"]]


def test_save_for_hub_rejects_mismatched_catalog(tmp_path, tiny_config, make_tiny_model, tiny_processor):
    with pytest.raises(ValueError, match="same catalog"):
        save_for_hub(make_tiny_model(tiny_config(num_items=40)), tiny_processor, tmp_path)


# ----------------------------------------------------------------------------------------------------------------
# The model card
# ----------------------------------------------------------------------------------------------------------------
def test_card_front_matter_and_numbers_equal_metrics(tiny_model, tiny_processor):
    metrics = fake_metrics()
    readme = str(build_model_card(tiny_model, tiny_processor, metrics, repo_id="me/genrec-beauty"))
    meta = front_matter(readme)
    assert meta["library_name"] == "transformers"
    assert meta["license"] == "apache-2.0"
    assert meta["base_model"] == "openai/clip-vit-base-patch32"
    assert meta["datasets"] == ["All_Beauty"]
    assert set(meta["metrics"]) == {"ndcg", "recall", "mrr"}
    assert {"genrec_hf", "sequential-recommendation", "recommendation", "multimodal", "clip"} <= set(meta["tags"])
    assert "pipeline_tag" not in meta
    (entry,) = meta["model-index"]
    assert entry["name"] == "genrec-beauty"
    (result,) = entry["results"]
    assert result["dataset"]["split"] == "test"
    reported = {m["name"]: (m["type"], m["value"]) for m in result["metrics"]}
    assert reported == {
        "HR@10": ("recall", metrics["test"]["hr@10"]["value"]),
        "NDCG@10": ("ndcg", metrics["test"]["ndcg@10"]["value"]),
        "MRR": ("mrr", metrics["test"]["mrr"]["value"]),
    }

    def cell(value: float) -> str:
        return f"{value:.4f}"

    for key in METRIC_KEYS:
        test = metrics["test"][key]
        ci = f"[{cell(test['ci_low'])}, {cell(test['ci_high'])}]"
        assert f"| {key.upper()} | {cell(test['value'])} | {ci} |" in readme
        warm, cold = metrics["test_warm"][key], metrics["test_cold"][key]
        assert f"{cell(warm['value'])} [{cell(warm['ci_low'])}, {cell(warm['ci_high'])}]" in readme
        assert f"{cell(cold['value'])} [{cell(cold['ci_low'])}, {cell(cold['ci_high'])}]" in readme
        pop = metrics["popularity"]
        assert f"| {key.upper()} | {cell(metrics['valid'][key])} | {cell(pop['valid'][key])} |" in readme
        assert cell(pop["test"][key]["value"]) in readme
    assert "warm (200 users)" in readme and "cold (53 users)" in readme and "(253 users)" in readme
    for fact in (
        "| users | 253 |",
        "| interactions | 2535 |",
        "| density | 0.0281 |",
        "| exclude history | no |",
        "| global step | 6 |",
        "leave_one_out",
        'repo_id = "me/genrec-beauty"',
        "trust_remote_code=True",
        "revision=revision",
        "import genrec_hf",
    ):
        assert fact in readme, fact
    assert "untrained" not in readme


def test_every_number_in_the_card_prose_comes_from_config_or_metrics(tiny_model, tiny_processor):
    import re

    metrics = fake_metrics()
    body = str(build_model_card(tiny_model, tiny_processor, metrics, repo_id="me/x")).split("---\n", 2)[2]
    body = body.split("## How to use")[0]  # the snippet holds code (k=10), not claims
    allowed = set()
    for value in json.dumps(metrics).replace('"', " ").replace(",", " ").replace(":", " ").split():
        try:
            number = float(value.strip("}{[]()%"))
        except ValueError:
            continue
        allowed |= {f"{number:.4f}", f"{number:.6g}", str(int(number)) if number.is_integer() else ""}
    config = tiny_model.config
    allowed |= {
        str(v)
        for v in (
            config.num_items,
            config.num_hidden_layers,
            config.hidden_size,
            config.num_attention_heads,
            config.max_seq_len,
        )
    }
    allowed |= {"1", str(metrics["test_warm"]["count"] + metrics["test_cold"]["count"])}  # "1 / rank", test users
    for version in metrics["training"]["framework_versions"].values():  # "5.24.0" reads as 5.24 and .0
        allowed |= set(re.findall(r"\d+(?:\.\d+)?", version))
    numbers = set(re.findall(r"(?<![\w@.])-?\d+(?:\.\d+)?", body))
    assert numbers <= allowed, numbers - allowed


def test_card_without_metrics_says_untrained(tiny_model, tiny_processor):
    readme = str(build_model_card(tiny_model, tiny_processor))
    meta = front_matter(readme)
    assert "model-index" not in meta and "datasets" not in meta
    assert "untrained or unevaluated" in readme
    assert "| HR@10 |" not in readme and "95% CI" not in readme


def test_card_names_the_negatives_the_model_was_trained_against(tiny_config, make_tiny_model, tiny_processor):
    full = str(build_model_card(make_tiny_model(tiny_config()), tiny_processor))
    assert "predicts its\n  next item against the whole catalog." in full
    sampled = make_tiny_model(tiny_config(loss_negatives="sampled", num_sampled_negatives=64))
    card = str(build_model_card(sampled, tiny_processor))
    assert "next item against the batch's targets and 64 uniformly sampled items, with the log-Q correction." in card


def test_card_says_whether_content_features_are_whitened(tiny_config, make_tiny_model, tiny_processor):
    model = make_tiny_model(tiny_config())
    assert "whitened" not in str(build_model_card(model, tiny_processor))
    model.fit_content_whitening()
    assert "They are whitened (centred and decorrelated" in str(build_model_card(model, tiny_processor))


def test_card_names_the_ranking_protocol_of_its_numbers(tiny_model, tiny_processor):
    all_items = str(build_model_card(tiny_model, tiny_processor, fake_metrics()))
    assert "ranked with the **all items**" in all_items and "history items included" in all_items
    metrics = fake_metrics()
    metrics["protocol"]["exclude_history"] = True
    excluded = str(build_model_card(tiny_model, tiny_processor, metrics))
    assert "ranked with the **history excluded**" in excluded
    assert "own history items are removed from the ranking" in excluded


def test_card_shows_the_other_protocol_numbers_of_the_same_model(tiny_model, tiny_processor):
    assert "The same model and scores ranked" not in str(build_model_card(tiny_model, tiny_processor, fake_metrics()))
    metrics = fake_metrics()
    sections = ("protocol", "valid", "test", "test_warm", "test_cold", "popularity")
    other = {name: fake_metrics()[name] for name in sections}
    other["protocol"]["exclude_history"] = True
    other["test"]["ndcg@10"] = {"value": 0.0612, "ci_low": 0.0581, "ci_high": 0.0645}
    metrics["other_protocol"] = other
    card = str(build_model_card(tiny_model, tiny_processor, metrics))
    assert "ranked with the **all items**" in card
    assert "The same model and scores ranked with the **history excluded** protocol" in card
    assert "| NDCG@10 | 0.0612 | [0.0581, 0.0645] |" in card
    (result,) = front_matter(card)["model-index"][0]["results"]  # the front matter keeps the model's own protocol
    assert {m["name"]: m["value"] for m in result["metrics"]}["NDCG@10"] == metrics["test"]["ndcg@10"]["value"]


def test_card_omits_base_model_for_a_local_encoder(tiny_config, make_tiny_model, tiny_processor, tiny_clip_path):
    model = make_tiny_model(tiny_config(item_encoder_name_or_path=str(tiny_clip_path), fusion="id"))
    meta = front_matter(str(build_model_card(model, tiny_processor, extra_tags=["beauty"], license="mit")))
    assert "base_model" not in meta
    assert meta["license"] == "mit"
    assert meta["tags"][-1] == "beauty" and "multimodal" not in meta["tags"]


# ----------------------------------------------------------------------------------------------------------------
# Level 2: transport
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [dict(), dict(private=True, revision="v1"), dict(revision="v1", create_pr=True)],
    ids=["defaults", "private-branch", "pull-request"],
)
def test_publish_makes_one_upload_and_never_shows_the_token(monkeypatch, hub, trained_dir, capsys, caplog, options):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    caplog.set_level(logging.DEBUG)
    commit = publish(trained_dir, "me/genrec-beauty", commit_message="first", **options)

    assert commit.oid == "a" * 40 and commit.repo_url.repo_id == "me/genrec-beauty"
    expected_calls = ["create_repo", "upload_folder"]
    if options.get("revision") and not options.get("create_pr"):
        expected_calls.insert(1, "create_branch")
        assert hub.kwargs("create_branch") == {"repo_id": "me/genrec-beauty", "branch": "v1", "exist_ok": True}
    assert hub.names() == expected_calls
    assert hub.kwargs("create_repo") == {
        "repo_id": "me/genrec-beauty",
        "private": options.get("private"),
        "exist_ok": True,
    }
    upload = hub.kwargs("upload_folder")
    assert upload["repo_id"] == "me/genrec-beauty"
    assert upload["revision"] == options.get("revision")
    assert upload["create_pr"] is options.get("create_pr", False)
    assert upload["commit_message"] == "first"
    assert not Path(upload["folder_path"]).exists(), "the temporary folder is removed after the upload"
    (uploaded,) = hub.uploads
    assert {p.name for p in uploaded.iterdir()} == FROM_TRAINED_DIR
    assert json.loads((uploaded / "metrics.json").read_text()) == fake_metrics()
    assert 'repo_id = "me/genrec-beauty"' in (uploaded / "README.md").read_text()

    captured = capsys.readouterr()
    assert_secret_absent(captured.out, captured.err, caplog.text, folder=uploaded)
    assert all(SECRET not in str(record.args) for record in caplog.records)


def test_publish_a_model_object_passes_the_token_to_hfapi(monkeypatch, hub, tiny_model, tiny_processor):
    tokens, original_init = [], HfApi.__init__

    def recording_init(api, *args, token=None, **kwargs):
        tokens.append(token)
        original_init(api, *args, token=token, **kwargs)

    monkeypatch.setattr(HfApi, "__init__", recording_init)
    publish(tiny_model, "me/x", token=SECRET, processor=tiny_processor)
    assert tokens == [SECRET]
    (uploaded,) = hub.uploads
    assert "metrics.json" not in {p.name for p in uploaded.iterdir()}
    assert "untrained or unevaluated" in (uploaded / "README.md").read_text()
    with pytest.raises(ValueError, match="processor"):
        publish(tiny_model, "me/x")


def test_cli_dry_run_writes_exactly_the_uploaded_folder(monkeypatch, hub, trained_dir, tmp_path, capsys, caplog):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("MY_TOKEN", SECRET)
    caplog.set_level(logging.DEBUG)
    dry = tmp_path / "dry"
    assert push_to_hub_main(["--model", str(trained_dir), "--repo_id", "me/x", "--dry_run", str(dry)]) == 0
    assert hub.calls == [], "a dry run uploads nothing"
    assert {p.name for p in dry.iterdir()} == FROM_TRAINED_DIR

    assert (
        push_to_hub_main(
            [
                "--model",
                str(trained_dir),
                "--repo_id",
                "me/x",
                "--private",
                "--revision",
                "dev",
                "--token_env",
                "MY_TOKEN",
            ]
        )
        == 0
    )
    assert hub.names() == ["create_repo", "create_branch", "upload_folder"]
    assert hub.kwargs("create_repo")["private"] is True
    assert hub.kwargs("upload_folder")["revision"] == "dev"
    (uploaded,) = hub.uploads
    assert {p.name for p in uploaded.iterdir()} == FROM_TRAINED_DIR
    for path in dry.iterdir():
        assert path.read_bytes() == (uploaded / path.name).read_bytes(), f"{path.name} differs from the upload"

    captured = capsys.readouterr()
    assert "nothing was uploaded" in captured.out and "revision='" + "a" * 40 + "'" in captured.out
    assert_secret_absent(captured.out, captured.err, caplog.text, folder=dry)

    with pytest.raises(FileExistsError):
        push_to_hub_main(["--model", str(trained_dir), "--repo_id", "me/x", "--dry_run", str(dry)])
    monkeypatch.delenv("MY_TOKEN")
    with pytest.raises(SystemExit, match="MY_TOKEN"):
        push_to_hub_main(["--model", str(trained_dir), "--repo_id", "me/x", "--token_env", "MY_TOKEN"])
    assert len(hub.uploads) == 1


# ----------------------------------------------------------------------------------------------------------------
# Level 3: a real Hub (opt-in)
# ----------------------------------------------------------------------------------------------------------------
def _hub_reachable() -> bool:
    try:
        socket.getaddrinfo("huggingface.co", 443)
    except OSError:
        return False
    return True


@pytest.mark.hub
@pytest.mark.skipif(not os.environ.get("HF_TOKEN") or not _hub_reachable(), reason="needs HF_TOKEN and huggingface.co")
def test_publish_to_the_real_hub(monkeypatch, tmp_path, tiny_model, tiny_processor):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    api = HfApi()
    repo_id = f"{api.whoami()['name']}/genrec-hf-test-{uuid.uuid4().hex[:8]}"
    try:
        commit = publish(tiny_model, repo_id, private=True, processor=tiny_processor, metrics=fake_metrics())
        assert set(api.list_repo_files(repo_id, revision=commit.oid)) >= EXPECTED_FILES | {".gitattributes"}
        model = AutoModel.from_pretrained(repo_id, revision=commit.oid, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained(repo_id, revision=commit.oid, trust_remote_code=True)
        assert recommend_json(model, processor) == recommend_json(tiny_model, tiny_processor)
    finally:
        api.delete_repo(repo_id, missing_ok=True)


def test_card_lists_training_hyperparameters_framework_versions_and_citations(tiny_model, tiny_processor):
    card = str(build_model_card(tiny_model, tiny_processor, fake_metrics()))
    hyperparameters = card.split("### Training hyper-parameters", 1)[1].split("###", 1)[0]
    assert "| learning rate | 0.00037 |" in hyperparameters and "| total train batch size | 96 |" in hyperparameters
    assert "| optimizer | adamw_torch |" in hyperparameters
    versions = card.split("### Framework versions", 1)[1].split("##", 1)[0]
    assert [line for line in versions.splitlines() if line] == [
        "- genrec_hf 0.1.0",
        "- transformers 5.24.0",
        "- torch 2.13.0",
    ]
    citation = card.split("## Citation", 1)[1]
    assert "@software{genrec_hf" in citation and "version 0.1.0" in citation  # the installed version
    assert "Self-Attentive Sequential Recommendation" in citation and "hou2024bridging" not in citation
    metrics = fake_metrics()
    metrics["data"]["stats"]["hub_datasets"] = ["datasets/McAuley-Lab/Amazon-Reviews-2023"]
    assert "Bridging Language and Items for Retrieval and Recommendation" in str(
        build_model_card(tiny_model, tiny_processor, metrics)
    )
    del metrics["training"]["hyperparameters"], metrics["training"]["framework_versions"]  # an older metrics.json
    older = str(build_model_card(tiny_model, tiny_processor, metrics))
    assert "### Training hyper-parameters" not in older and "### Framework versions" not in older


def test_card_names_the_hub_dataset_the_data_came_from(tiny_model, tiny_processor):
    metrics = fake_metrics()
    metrics["data"]["stats"]["hub_datasets"] = ["datasets/McAuley-Lab/Amazon-Reviews-2023"]  # as --categories records
    meta = front_matter(str(build_model_card(tiny_model, tiny_processor, metrics)))
    assert meta["datasets"] == ["McAuley-Lab/Amazon-Reviews-2023"]
    for entry in meta["model-index"][0]["results"]:
        dataset, metric = entry["dataset"], entry["metrics"][0]
        assert (dataset["type"], dataset["name"], dataset["config"]) == (
            "McAuley-Lab/Amazon-Reviews-2023",
            "All_Beauty",
            "All_Beauty",
        )
        assert metric["config"] == "all items"  # the ranking protocol of fake_metrics (exclude_history False)

"""`similar_items` on real data: on Amazon 2023 All_Beauty, the items most similar to an item share its product form
(the `Item Form` of its details: Cream, Gel, Oil, ...) far more often than chance, for a model trained here.

Only items whose details name a form count (166 of the 356 items, 20 forms); chance is the probability that another
such item, drawn at random, has the same form as the query (0.070).
"""

import collections
import json
from pathlib import Path

import pytest

from genrec_hf.data.items import load_item_table
from genrec_hf.inference import similar_items
from genrec_hf.training import EvaluationArguments, ModelArguments, train

RAW = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "amazon2023_all_beauty" / "raw"
K = 5


def train_on_all_beauty(output_dir: Path, epochs: int, **model_args):
    if not (RAW / "All_Beauty.jsonl.gz").is_file():
        pytest.skip(f"All_Beauty raw files not found in {RAW} (shared data folder absent)")
    return train(
        {"reviews": [str(RAW / "All_Beauty.jsonl.gz")], "meta": [str(RAW / "meta_All_Beauty.jsonl.gz")]},
        output_dir,
        model=ModelArguments(hidden_size=64, num_hidden_layers=1, num_attention_heads=2, max_seq_len=20, **model_args),
        evaluation=EvaluationArguments(bootstrap_samples=10),
        training_args={
            "num_train_epochs": epochs, "per_device_train_batch_size": 64, "use_cpu": True, "disable_tqdm": True,
            "report_to": "none", "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False,
        },
    )  # fmt: skip


def same_form_share(result, data_dir: Path) -> tuple[float, float, int]:
    """`(share of the K most similar items with the query's form, chance of that, neighbours counted)`."""
    forms = {
        item["parent_asin"]: json.loads(item["details"] or "{}").get("Item Form") for item in load_item_table(data_dir)
    }
    queries = [asin for asin in result.processor.item_vocab[1:] if forms.get(asin)]
    sizes = collections.Counter(forms[asin] for asin in queries)
    chance = sum((sizes[forms[asin]] - 1) / (len(queries) - 1) for asin in queries) / len(queries)
    pairs = [
        (forms[query], forms[other.parent_asin])
        for query, row in zip(queries, similar_items(result.model, result.processor, queries, k=K))
        for other in row
        if forms.get(other.parent_asin)
    ]
    return sum(a == b for a, b in pairs) / len(pairs), chance, len(pairs)


def test_similar_items_of_an_id_model_share_the_product_form(tmp_path):
    """ID-only model: similarity learned from purchase sequences alone (it never reads the form)."""
    result = train_on_all_beauty(tmp_path, epochs=30, item_encoder="none", fusion="id")
    share, chance, pairs = same_form_share(result, tmp_path / "data")
    print(f"ID-only, All_Beauty: same form among the {K} most similar {share:.3f} ({pairs} pairs), chance {chance:.3f}")
    assert chance == pytest.approx(0.0702, abs=1e-3) and pairs > 300
    assert share > 1.5 * chance


@pytest.mark.slow
def test_similar_items_of_a_gated_minilm_model_share_the_product_form(tmp_path, minilm_path):
    """Gated content + ID model over all-MiniLM-L6-v2 text features (its item text includes the details)."""
    result = train_on_all_beauty(tmp_path, epochs=5, item_encoder=str(minilm_path), fusion="gate")
    share, chance, pairs = same_form_share(result, tmp_path / "data")
    print(f"gate + MiniLM, All_Beauty: same form among the {K} most similar {share:.3f} ({pairs}), chance {chance:.3f}")
    assert share > 4 * chance

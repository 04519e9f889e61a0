"""The pipeline takes batches (`batch_size`) and datasets (`KeyDataset`) and gives what one-by-one calls give."""

import pytest
from datasets import Dataset
from transformers import pipeline
from transformers.pipelines.pt_utils import KeyDataset

HISTORIES = [["A01", "A02"], ["B01"], [], ["A03", "B02", "A01"], ["A04"]]


def ranked(results: list[list[dict]]) -> list:
    """Items in rank order with scores to float32 precision (a batch may round the last digit differently)."""
    return [[(r["parent_asin"], pytest.approx(r["score"], rel=1e-5), r["title"]) for r in result] for result in results]


@pytest.fixture(scope="module")
def recommender(trained_model_dir):
    return pipeline("next-item-recommendation", model=str(trained_model_dir))


@pytest.mark.parametrize("batch_size", [2, 3, 8])
def test_batched_calls_give_the_unbatched_results(recommender, batch_size):
    one_by_one = [recommender(history, k=4) for history in HISTORIES]
    assert ranked(recommender(HISTORIES, k=4, batch_size=batch_size)) == ranked(one_by_one)
    assert ranked(recommender(HISTORIES, k=4)) == ranked(one_by_one)


def test_a_dataset_column_is_streamed_in_batches(recommender):
    dataset = Dataset.from_dict({"user_id": list("abcde"), "history": HISTORIES})
    streamed = list(recommender(KeyDataset(dataset, "history"), k=3, batch_size=2, return_flags=True))
    assert ranked([r["recommendations"] for r in streamed]) == ranked([recommender(h, k=3) for h in HISTORIES])
    assert streamed[2]["popularity_fallback"] and not streamed[0]["popularity_fallback"]

"""The demo app (`app.py`): its backend (search, recommendations with reasons, similar items, messages for bad
histories), and the app itself served on 127.0.0.1 and driven in headless Chromium.

The browser test trains a small model on the embedded synthetic sample (its items have photos), builds a history by
searching titles, and checks that the cards shown are `model.recommend` for that history, with photos that load. Its
screenshot goes to the test's temp dir, and also to `$GENREC_DEMO_SCREENSHOT` when set (the README's image:
`GENREC_DEMO_SCREENSHOT=docs/demo.png pytest tests/test_demo.py`).
"""

import importlib.util
import os
import shutil
import socket
from pathlib import Path

import pytest

from genrec_hf.demo import EMPTY_HISTORY, RecommenderDemo, parse_history, render_cards
from genrec_hf.inference import similar_items
from genrec_hf.training import EvaluationArguments, ModelArguments, train

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry calls from the served app
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


READ_CARDS = """
return Array.from(document.querySelectorAll('#results .genrec-card'))
    .map(card => [card.dataset.parentAsin, card.querySelector('.genrec-title').textContent]);
"""


def load_app_module():
    spec = importlib.util.spec_from_file_location("genrec_demo_app", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_model_dir(tmp_path_factory, tiny_clip_path) -> Path:
    """A small gated model trained 3 epochs on the synthetic sample (300 items with photos), saved with its data."""
    folder = tmp_path_factory.mktemp("demo") / "model"
    result = train(
        {"synthetic": True},
        folder,
        model=ModelArguments(
            item_encoder=str(tiny_clip_path), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, max_seq_len=10
        ),
        evaluation=EvaluationArguments(bootstrap_samples=10),
        training_args={
            "num_train_epochs": 3, "use_cpu": True, "disable_tqdm": True, "report_to": "none",
            "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False,
        },
    )  # fmt: skip
    return result.save()


@pytest.fixture(scope="module")
def demo(demo_model_dir) -> RecommenderDemo:
    return RecommenderDemo.load(str(demo_model_dir))


def expected_recommendations(demo: RecommenderDemo, history: list[str], k: int = 10) -> list[tuple[str, str]]:
    """`(parent_asin, title)` of `model.recommend` for `history`, straight from the model."""
    batch = demo.processor([history])
    top = demo.model.recommend(batch["item_ids"], batch["attention_mask"], k=k).item_indices[0]
    return [(demo.catalog.parent_asins[row], demo.catalog.title(row)) for row in top.tolist()]


def test_demo_backend_search_recommend_and_messages(demo):
    matches = demo.search("Blue Ceramic MUG")
    assert 0 < len(matches) <= 8 and all("blue ceramic mug" in label.lower() for label, _ in matches)
    assert demo.search("  ") == [] and demo.search("no such thing") == []
    history = [matches[0][1], matches[1][1]]
    assert parse_history(" , ".join(history)) == history == parse_history(f'["{history[0]}", "{history[1]}"]')

    message, cards = demo.recommend(" ".join(history), k=5)
    assert "history of 2 known items" in message
    for asin, title in expected_recommendations(demo, history, k=5):
        assert f'data-parent-asin="{asin}"' in cards and title in cards
    assert cards.count("<img ") == 5 and "because of" in cards and "content " in cards

    message, cards = demo.recommend("", k=3)
    assert message.startswith(EMPTY_HISTORY) and "popularity" in message and cards.count("<figure ") == 3
    message, _ = demo.recommend(f"NOPE1 {history[0]}", k=3)
    assert "unknown parent_asin" in message and "1 known items" in message
    assert demo.similar("NOPE1")[0] == "NOPE1 is not in the catalog." and "Pick an item" in demo.similar(None)[0]
    message, cards = demo.similar(history[0], k=4)
    assert cards.count("<figure ") == 4 and f'data-parent-asin="{history[0]}"' not in cards


def test_cards_escape_titles_and_show_a_tile_without_photo(trained_model_dir, tmp_path):
    demo = RecommenderDemo.load(str(trained_model_dir), str(trained_model_dir / "items.jsonl"))
    assert demo.titles["A01"] == "alpha gadget 01"  # from the item table: the saved model has no catalog
    html = render_cards([demo.card("A01", 1.5, "<b>note</b>")])
    assert "genrec-nophoto" in html and "&lt;b&gt;note&lt;/b&gt;" in html and "score 1.500" in html


@pytest.fixture(scope="module")
def served_app(demo):
    pytest.importorskip("gradio", reason='pip install -e ".[demo]" for the demo app')
    app_module = load_app_module()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = app_module.build_app(demo)
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=app_module.CSS)
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason='pip install -e ".[test]" for the browser test')
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/setup installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_app_in_a_real_browser_shows_model_recommend_with_photos(demo, served_app, browser, tmp_path):
    from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    # elements re-rendered by a late search result, or covered while it loads: look again
    wait = WebDriverWait(
        browser, 30, ignored_exceptions=(StaleElementReferenceException, ElementClickInterceptedException)
    )
    browser.get(served_app)
    search = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#search textarea"))
    history_box = browser.find_element(By.CSS_SELECTOR, "#history textarea")

    def add_match(query: str, position: int) -> None:
        def matches(d):
            return [label for label in d.find_elements(By.CSS_SELECTOR, "#matches label") if query in label.text]

        def select(d) -> bool:  # clicks again if a late search result re-rendered the list under the click
            found = matches(d)
            if len(found) <= position:
                return False
            label = found[position]
            if label.find_element(By.TAG_NAME, "input").is_selected():
                return True
            label.click()
            return False

        search.clear()
        search.send_keys(query)
        wait.until(select)
        before = history_box.get_attribute("value")
        browser.find_element(By.CSS_SELECTOR, "#add").click()
        wait.until(lambda d: history_box.get_attribute("value") != before)

    def cards_after(status_text: str) -> list[tuple[str, str]]:
        """`(parent_asin, title)` of the result cards, once the status line says `status_text` (read in one
        script, so a re-render cannot interleave)."""
        wait.until(lambda d: status_text in d.find_element(By.CSS_SELECTOR, "#status").text)
        return [tuple(card) for card in wait.until(lambda d: d.execute_script(READ_CARDS))]

    add_match("blue ceramic mug", 0)
    add_match("red wool scarf", 1)
    history = parse_history(history_box.get_attribute("value"))
    assert len(history) == 2 and all(asin in demo.processor for asin in history)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history-cards .genrec-card")) == 2)

    browser.find_element(By.CSS_SELECTOR, "#recommend").click()
    shown = cards_after("history of 2 known items")
    assert shown == expected_recommendations(demo, history)
    photos = browser.execute_script(
        "return Array.from(document.querySelectorAll('#results .genrec-card img'))"
        ".map(img => img.complete && img.naturalWidth > 0);"
    )
    assert photos == [True] * len(shown)  # every synthetic item has a photo, and every one loaded
    notes = [n.text for n in browser.find_elements(By.CSS_SELECTOR, "#results .genrec-note")]
    assert all("because of" in note and "content" in note for note in notes)
    browser.execute_script("document.querySelector('#history-cards').scrollIntoView();")  # history and results
    screenshot = tmp_path / "demo.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("GENREC_DEMO_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["GENREC_DEMO_SCREENSHOT"])

    browser.find_element(By.CSS_SELECTOR, "#similar").click()  # the selected match: the scarf
    similar = cards_after("most similar to")
    expected = similar_items(demo.model, demo.processor, [history[-1]], k=10)[0]
    assert similar == [(s.parent_asin, demo.titles[s.parent_asin]) for s in expected]

    browser.find_element(By.CSS_SELECTOR, "#clear").click()
    wait.until(lambda d: history_box.get_attribute("value") == "")
    browser.find_element(By.CSS_SELECTOR, "#recommend").click()
    wait.until(lambda d: EMPTY_HISTORY in d.find_element(By.CSS_SELECTOR, "#status").text)

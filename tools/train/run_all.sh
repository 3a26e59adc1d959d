#!/bin/sh
# Rebuild the embedded default models from a clean checkout (Debian 12; ~100 min of training on 2 cores).
#   tools/train/run_all.sh            # everything: deps check, corpus, tokenizer, training, export, evaluation
# Environment: TARGET_MIN / DRAFT_PLAIN_MIN / DRAFT_DISTILL_MIN (minutes, defaults 90/45/50).
# All data and checkpoints go to tools/train/work/ (git-ignored); outputs: models/spark-{draft,target}.gguf,
# models/spark-{draft,target}.golden.gguf, tools/train/manifest.json, tools/train/work/eval/results.json.
set -e
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
T=tools/train
if ! $PY -c "import torch, numpy, sentencepiece" 2>/dev/null; then
    apt-get update && apt-get install -y --no-install-recommends python3-torch python3-numpy \
        python3-sentencepiece libopenblas0-openmp
fi
# 1. the pinned npm packages (licences are checked per package by corpus.py)
mkdir -p $T/work/npm
if [ ! -d $T/work/npm/node_modules ]; then
    cp $T/npm-package.json $T/work/npm/package.json
    cp $T/npm-package-lock.json $T/work/npm/package-lock.json
    (cd $T/work/npm && npm ci --no-audit --no-fund --ignore-scripts)
fi
# 2. corpus + manifest, 3. tokenizer
nice -n 19 $PY $T/corpus.py
nice -n 19 $PY $T/tokenizer.py
# 4. training: target and draft concurrently (one thread each), the draft distilled from the target at the end
$T/launch_training.sh
wait_pid() { while kill -0 "$1" 2>/dev/null; do sleep 30; done; }
wait_pid "$(cat $T/work/logs/target.pid)"
wait_pid "$(cat $T/work/logs/draft.pid)"
# 5. export (+ golden logits), 6. evaluation
nice -n 19 $PY $T/export.py --ckpt $T/work/ckpt/target.pt --name spark-target
nice -n 19 $PY $T/export.py --ckpt $T/work/ckpt/draft.pt --name spark-draft
nice -n 19 $PY $T/evaluate.py --draft models/spark-draft.gguf --target models/spark-target.gguf

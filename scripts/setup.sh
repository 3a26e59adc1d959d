#!/usr/bin/env bash
# Sets everything up and runs the main job: build spark-ls, then generate a completion with the default model.
# (Until the trained default models ship, the default is the demo model the build writes.)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build.sh"
bin="$root/build/app/spark-ls"
model="$root/build/models/demo-qwen2.gguf"
echo
echo "== spark-ls inspect $model"
"$bin" inspect "$model" | head -n 12
echo
echo "== spark-ls generate (random-weight demo model: the text is noise until the default models ship)"
"$bin" generate --model "$model" --prompt "def fibonacci(n):" --n 24

#!/usr/bin/env bash
# Sets everything up and runs the main job: build spark-ls, then complete code with the embedded default models.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build.sh"
bin="$root/build/app/spark-ls"
echo
echo "== the embedded default target model"
"$bin" inspect "$root/models/spark-target.gguf" | sed -n 1,10p  # sed reads everything: no SIGPIPE under pipefail
for prompt in 'def fibonacci(n):' 'for (int i = 0; i < n; i++) {' 'function debounce(fn, ms) {'; do
  echo
  echo "== spark-ls generate --prompt '$prompt'"
  "$bin" generate --prompt "$prompt" --n 48
done

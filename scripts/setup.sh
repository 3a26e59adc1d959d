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
  echo "== spark-ls generate --prompt '$prompt' --draft default --ngram --compare"
  "$bin" generate --prompt "$prompt" --n 48 --draft default --ngram --compare
done
echo
echo "== fill in the middle: spark-ls generate --prompt 'def area(r):' --suffix '    return result' --draft default"
"$bin" generate --prompt $'import math\n\ndef area(r):\n' --suffix $'    return result\n' --n 32 --draft default --ngram --compare

#!/usr/bin/env bash
# The LSP replay benchmark (tools/lsp-client/replay.js): a Python and a C++ file of this repository typed key by
# key through `spark-ls serve` with a 150 ms editor debounce, against spark-ls's defaults, with the draft model,
# with the server's naive loop (naiveBaseline), and the naive loop of `spark-ls generate` plain decoding at a
# sample of the same request points. Prints the machine, the command and markdown tables for docs/PERFORMANCE.md.
# Usage: tools/bench/run_lsp_replay.sh [OUT_DIR]   (writes OUT_DIR/lsp-replay.md and lsp-replay.json)
# Environment: SPARK_LS (the binary; default build/app/spark-ls), SPARK_REPLAY_CHARS (characters typed per file,
# default 1500), SPARK_REPLAY_SEED (typing model, default 1), SPARK_REPLAY_CLI_SAMPLES (default 30).
# About 2-3 minutes on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${SPARK_LS:-$root/build/app/spark-ls}"
out="${1:-$root/build/bench}"
mkdir -p "$out"

# The client's pinned dependencies (vscode-jsonrpc); does nothing when they are installed already.
"$root/scripts/fetch-third-party.sh" >&2

# FILE:LINE: the typed regions start at a class or function definition about a third into each file.
files=(tools/train/model.py:79 inference/sampling.cpp:92)
cmd=(node "$root/tools/lsp-client/replay.js" --server "$bin"
     --chars "${SPARK_REPLAY_CHARS:-1500}" --seed "${SPARK_REPLAY_SEED:-1}"
     --cli-samples "${SPARK_REPLAY_CLI_SAMPLES:-30}" --json "$out/lsp-replay.json" "${files[@]}")

{
  echo "machine: $(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -1), $(nproc) cores," \
       "$(free -g | awk '/Mem:/{print $2}') GiB"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "command: tools/bench/run_lsp_replay.sh (${cmd[*]#"$root/"})"
  echo
  cd "$root"
  "${cmd[@]}"
} 2>&1 | tee "$out/lsp-replay.md"

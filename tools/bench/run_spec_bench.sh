#!/usr/bin/env bash
# Runs `spark-ls bench spec`: the drafters on code with the embedded default pair, then S(alpha) with an oracle
# drafter at real shapes (a Qwen2.5-1.5B-shaped Q8_0 target, a 0.5B-shaped Q4_0 draft, random weights written at
# benchmark time, never committed), then plots both. Usage: tools/bench/run_spec_bench.sh [OUT_DIR]
# Environment: SPARK_LS (the binary; default build/app/spark-ls), SPARK_BENCH_WORK (where the random models go;
# default /tmp/spark-bench), SPARK_BENCH_REPS, SPARK_BENCH_N (oracle tokens per run).
# The plot needs Debian's python3-matplotlib.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${SPARK_LS:-$root/build/app/spark-ls}"
out="${1:-$root/build/bench}"
work="${SPARK_BENCH_WORK:-/tmp/spark-bench}"
mkdir -p "$out" "$work"

# Written under a temporary name: an interrupted write must not pass for a model on the next run.
make_model() {  # preset type
  local f="$work/$1-$2.gguf"
  [ -f "$f" ] && return
  "$bin" make-model --preset "$1" --type "$2" --out "$f.part"
  mv "$f.part" "$f"
}
make_model qwen2.5-1.5b q8_0
make_model qwen2.5-0.5b q4_0

{
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/spec-machine.txt"

set +e
"$bin" bench spec --reps "${SPARK_BENCH_REPS:-5}" --tsv "$out/spec-code.tsv" | tee "$out/spec-code.txt"
code_rc=${PIPESTATUS[0]}
# The same requests with the adaptive rule off: what the drafters deliver when every possible draft is verified.
"$bin" bench spec --reps "${SPARK_BENCH_REPS:-5}" --fixed-gamma 4 --tsv "$out/spec-code-g4.tsv" | tee "$out/spec-code-g4.txt"
fixed_rc=${PIPESTATUS[0]}
"$bin" bench spec --oracle --target "$work/qwen2.5-1.5b-q8_0.gguf" --draft "$work/qwen2.5-0.5b-q4_0.gguf" \
  --n "${SPARK_BENCH_N:-64}" --prompt-tokens 64 --tsv "$out/spec-oracle.tsv" | tee "$out/spec-oracle.txt"
oracle_rc=${PIPESTATUS[0]}
set -e

if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  /usr/bin/python3 "$root/tools/bench/plot_spec.py" "$out/spec.png" "$out/spec-code.tsv" "$out/spec-code-g4.tsv" "$out/spec-oracle.tsv"
  echo "plot: $out/spec.png"
fi
# A speculative output that differs from plain greedy decoding is a bug, not a slow result.
[ "$code_rc" -eq 0 ] && [ "$fixed_rc" -eq 0 ] && [ "$oracle_rc" -eq 0 ]

#!/usr/bin/env bash
# Runs `spark-ls bench decode` on the two reference shapes with random weights written at benchmark time
# (never committed), then plots the results. Usage: tools/bench/run_decode_bench.sh [OUT_DIR]
# Needs a built build/app/spark-ls; the plot needs Debian's python3-matplotlib.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$root/build/app/spark-ls"
out="${1:-$root/build/bench}"
work="${SPARK_BENCH_WORK:-/tmp/spark-bench}"
mkdir -p "$out" "$work"

[ -f "$work/qwen2.5-0.5b-q8_0.gguf" ] || "$bin" make-model --preset qwen2.5-0.5b --type q8_0 --out "$work/qwen2.5-0.5b-q8_0.gguf"
[ -f "$work/qwen2.5-1.5b-q4_k.gguf" ] || "$bin" make-model --preset qwen2.5-1.5b --type q4_k --out "$work/qwen2.5-1.5b-q4_k.gguf"

{
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
} | tee "$out/machine.txt"
for m in qwen2.5-0.5b-q8_0 qwen2.5-1.5b-q4_k; do
  echo "== $m"
  "$bin" bench decode --model "$work/$m.gguf" --reps "${SPARK_BENCH_REPS:-3}" --tsv "$out/$m.tsv" | tee "$out/$m.txt"
done
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  /usr/bin/python3 "$root/tools/bench/plot_decode.py" "$out/decode.png" \
    "0.5B Q8_0=$out/qwen2.5-0.5b-q8_0.tsv" "1.5B Q4_K=$out/qwen2.5-1.5b-q4_k.tsv"
  echo "plot: $out/decode.png"
fi

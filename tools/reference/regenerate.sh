#!/usr/bin/env bash
# Regenerate the golden files next to the test models, using the independent
# numpy reference in this directory.  Models that are absent are skipped.
#
#   tools/reference/regenerate.sh [DATA_DIR]       (default: tests/data)
#
# Needs Debian's /usr/bin/python3 with numpy (override with PYTHON=...).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DATA="${1:-$ROOT/tests/data}"
PY="${PYTHON:-/usr/bin/python3}"

# Two fixed token sequences (ids < 256, valid for every tiny model):
#   short: 7 tokens, with a repeated id (42) so two keys share an embedding
#   long:  16 tokens, (37*i + 11) mod 256 for i = 0..15
SHORT="1,15,42,7,42,99,3"
LONG="11,48,85,122,159,196,233,14,51,88,125,162,199,236,17,54"

# Refuse to write goldens if the reference fails its own self-checks.
"$PY" "$HERE/test_ref.py"

for m in tiny-llama tiny-qwen2 tiny-llama-tied; do
  if [[ -f "$DATA/$m.gguf" ]]; then
    echo "== $m"
    "$PY" "$HERE/make_golden.py" --model "$DATA/$m.gguf" --out "$DATA/$m.golden.gguf" \
      --case "short=$SHORT" --case "long=$LONG"
  else
    echo "== $m: $DATA/$m.gguf not found, skipped"
  fi
done

if [[ -f "$DATA/quant_types.gguf" ]]; then
  echo "== quant_types"
  "$PY" "$HERE/make_golden.py" --dequant "$DATA/quant_types.gguf" --out "$DATA/quant_types.golden.gguf"
else
  echo "== quant_types: $DATA/quant_types.gguf not found, skipped"
fi

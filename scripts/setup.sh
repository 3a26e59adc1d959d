#!/usr/bin/env bash
# Sets everything up and runs the main job: build spark-ls (installing what it needs), then a short scripted
# editing session through the language server on the embedded default models — a real LSP client types into a
# Python and a C++ file and prints each suggestion with its keystroke-to-suggestion latency.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/build.sh"  # also installs the Debian packages and the pinned npm packages (the LSP client)
bin="$root/build/app/spark-ls"
echo
echo "== the embedded default target model"
"$bin" inspect "$root/models/spark-target.gguf" | sed -n 1,10p  # sed reads everything: no SIGPIPE under pipefail
echo
echo "== an editing session through the language server (node tools/lsp-client/demo.js)"
node "$root/tools/lsp-client/demo.js" "$bin"

#!/usr/bin/env bash
# Installs dependencies, fetches third-party sources and builds into build/ (or $SPARK_BUILD_DIR).
# Extra arguments go to cmake's configure step, e.g. scripts/build.sh -DSPARK_SANITIZE=ON.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${SPARK_BUILD_DIR:-$root/build}"
"$root/scripts/install-deps.sh"
"$root/scripts/fetch-third-party.sh"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${SPARK_BUILD_TYPE:-Release}" "$@" >/dev/null
ninja -C "$build_dir"

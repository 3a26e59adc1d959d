#!/usr/bin/env bash
# Builds and runs the whole test suite, then the memory-safety run: the suite again under AddressSanitizer and
# UndefinedBehaviorSanitizer (all but the [large] test, whose 0.5B-shaped model is too slow there).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="${SPARK_TEST_JOBS:-2}"

"$root/scripts/build.sh"
ctest --test-dir "$root/build" --output-on-failure -j "$jobs"

SPARK_BUILD_DIR="$root/build-asan" SPARK_BUILD_TYPE=RelWithDebInfo "$root/scripts/build.sh" -DSPARK_SANITIZE=ON
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure -j "$jobs" -E '^large:'

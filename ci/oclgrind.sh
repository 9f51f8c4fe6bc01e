#!/usr/bin/env bash
# CI step: the kernels on small shapes under Oclgrind, which reports data races (both kernel
# variants, __local tiles and barriers included) and out-of-bounds accesses. Its uninitialised-
# value plugin cannot be used: it aborts on LLVM's `freeze` instruction (Debian's oclgrind 21.10).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
log=$(mktemp)
oclgrind --data-races --check-api "$build/tests/test_small" 2>&1 | tee "$log"
if grep -qiE 'error|race|invalid' "$log"; then
    echo "oclgrind reported a problem" >&2
    exit 1
fi

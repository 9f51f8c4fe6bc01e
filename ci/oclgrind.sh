#!/usr/bin/env bash
# CI step: the kernels on small shapes under Oclgrind, which reports data races (both kernel
# variants, __local tiles and barriers included) and out-of-bounds accesses. Its uninitialised-
# value plugin cannot be used: it aborts on LLVM's `freeze` instruction (Debian's oclgrind 21.10).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
log=$(mktemp)
oclgrind --data-races --check-api "$build/tests/test_small" 2>&1 | tee "$log"
# The GPU variant again under NVIDIA-like limits, 48 KB of local memory and 1024 work-items per
# group: test_small's GPU tiles (the NVIDIA row's among them, shrunk to fit at D = 128).
oclgrind --data-races --check-api --local-mem-size 49152 --max-wgsize 1024 "$build/tests/test_small" --gpu 2>&1 |
    tee -a "$log"
if grep -qiE 'error|race|invalid' "$log"; then
    echo "oclgrind reported a problem" >&2
    exit 1
fi

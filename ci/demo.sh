#!/usr/bin/env bash
# The demo: install what is missing, build in Release, then time every available device, the
# reference path and the OpenBLAS baseline on three patterns: a table read at a glance (--brief;
# without it the bench prints all 25 columns) and the same sweep as an SVG plot.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/install.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
build/clattn devices
echo
build/clattn bench --pattern dense,causal,window --n 512,1024 --h 4 --d 64 --window 64 --repeat 5 --brief \
    --plot build/demo.svg
echo
echo "plot: build/demo.svg"

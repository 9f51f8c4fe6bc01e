#!/usr/bin/env bash
# The demo: install what is missing, build in Release, then compare every available device with
# the reference path on dense attention (a table), and a short sweep written as an SVG plot.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/install.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
build/clattn devices
echo
build/clattn bench --pattern dense,causal,window --n 512,1024 --h 4 --d 64 --window 64 --repeat 5 \
    --plot build/demo.svg
echo
echo "plot: build/demo.svg"

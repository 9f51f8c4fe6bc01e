#!/usr/bin/env bash
# The test command: install what is missing, check the formatting, build with -Wall -Wextra
# -Werror, run every test on every OpenCL device (POCL, and Intel's CPU runtime where
# ci/install.sh could add it), the Python package's tests after `pip install .` into a fresh venv
# (ci/python.sh), then the checking steps: sanitizers, Oclgrind on the kernels, the GPU programs'
# resources and coalescing for NVIDIA and AMD GPUs, fuzzers.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/install.sh
ci/format.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCLATTN_WERROR=ON
cmake --build build -j "$(nproc)"
build/clattn devices
# Tests run side by side, one per core: a cold run spends most of its time compiling kernels,
# which is one thread per program (7.4 min with -j 2 against about 11.6 serially, 2 cores).
ctest --test-dir build --output-on-failure -j "$(nproc)"
ci/python.sh
ci/sanitizers.sh
ci/oclgrind.sh build
ci/gpu_static.sh build
ci/fuzz.sh
echo "ci/test.sh: all steps passed"

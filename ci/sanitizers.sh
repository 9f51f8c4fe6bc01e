#!/usr/bin/env bash
# CI step: the test suite under AddressSanitizer + UndefinedBehaviorSanitizer, and the thread
# stress test under ThreadSanitizer. POCL and LLVM are not instrumented; their process-lifetime
# allocations are suppressed in tests/lsan.supp (ThreadSanitizer needs no suppression).
set -euo pipefail
cd "$(dirname "$0")/.."
# Both run on the system's ICDs (POCL) alone, not ci/install.sh's folder that adds Intel's
# runtime: they check clattn's host code, the same on every device, and Intel's uninstrumented
# runtime only adds noise. LeakSanitizer reports strings it never frees (in its
# DeviceProgram::initializeAllKernelArgsInfoFromIRData), ThreadSanitizer reports races on its
# TBB workers' heap from JIT-compiled code, which no library suppression names, and each of its
# program builds takes some 1.7 s here.
unset OCL_ICD_VENDORS
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCLATTN_WERROR=ON -DCLATTN_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$(nproc)" >/dev/null
LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp" UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$(nproc)"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCLATTN_TSAN=ON >/dev/null
cmake --build build-tsan -j "$(nproc)" --target test_threads >/dev/null
TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -R '^test_threads$'

#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test clattn (run as root). Sourced by
# ci/demo.sh and ci/test.sh; installs nothing when every package is already there.
packages=(build-essential cmake pkg-config ocl-icd-opencl-dev opencl-c-headers ocl-icd-libopencl1
          pocl-opencl-icd clinfo libopenblas-dev clang clang-format libclang-rt-14-dev oclgrind)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "ci: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

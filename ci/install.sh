#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test clattn (run as root), then Intel's
# OpenCL CPU runtime as a second OpenCL implementation beside POCL. Sourced by ci/demo.sh and
# ci/test.sh; installs nothing that is already there.
packages=(build-essential cmake pkg-config ocl-icd-opencl-dev opencl-c-headers ocl-icd-libopencl1
          pocl-opencl-icd clinfo libopenblas-dev clang clang-format libclang-rt-14-dev oclgrind python3-venv
          libopenmpi-dev openmpi-bin clang-15 libclc-15 liboclgrind-dev llvm-dev) # the last four: ci/gpu_static.sh
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

# Intel's OpenCL CPU runtime comes from PyPI into a venv of its own: CLATTN_INTEL_OCL names its
# folder (default /opt/clattn-intel-ocl), or is "off" to skip it. An ICD folder lists it beside
# the system's ICDs and OCL_ICD_VENDORS hands that folder to the ICD loader, so the tests and the
# bench see both devices. Where it cannot be installed or does not work, CI runs on POCL alone
# and the line printed here says why.
intel_ocl_pins=(intel-opencl-rt==2026.2.0 intel-cmplr-lib-rt==2026.2.0 intel-cmplr-lic-rt==2026.2.0 tbb==2023.2.0
                tcmlib==1.6.0)
intel_ocl() {
    local venv=${CLATTN_INTEL_OCL:-/opt/clattn-intel-ocl} absent="ci: no Intel OpenCL runtime, POCL alone:"
    local icd probe flags
    if [ "$venv" = off ]; then
        echo "$absent CLATTN_INTEL_OCL=off"
        return
    fi
    venv=$(realpath -m "$venv") # the ICD file names the library by this path, wherever the tests run
    if [ "$(uname -m)" != x86_64 ]; then
        echo "$absent its wheels are for x86-64 only, this machine is $(uname -m)"
        return
    fi
    if [ "$(cat "$venv/clattn-pins" 2>/dev/null)" != "${intel_ocl_pins[*]}" ]; then
        echo "ci: installing ${intel_ocl_pins[*]} into $venv"
        if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check --timeout 20 \
                   --retries 2 "${intel_ocl_pins[@]}" && echo "${intel_ocl_pins[*]}" >"$venv/clattn-pins"; }; then
            echo "$absent could not make the venv $venv or install the wheels into it (see above)"
            return
        fi
    fi
    icd=$venv/icd
    if ! { rm -rf "$icd" && mkdir -p "$icd"; }; then
        echo "$absent cannot write $icd"
        return
    fi
    # ocl-icd loads the folder in name order: "zz" keeps POCL platform 0, so the default device.
    echo "$venv/lib/libintelocl.so" >"$icd/zz-intel-cpu.icd"
    # clinfo reports this value by building a kernel on the device, so a number proves the runtime
    # starts, makes a context and compiles here (on a CPU it does not support, it does not).
    probe=$(OCL_ICD_VENDORS=$icd timeout 120 clinfo --raw 2>&1 | grep -m1 KERNEL_PREFERRED_WORK_GROUP_SIZE_MULTIPLE |
                tr -s ' ') || true
    if ! [[ $probe =~ MULTIPLE[[:space:]]+[0-9]+$ ]]; then
        flags=$(grep -m1 '^flags' /proc/cpuinfo | grep -owE 'sse4_2|avx2|avx512f' | paste -sd ' ') || true
        echo "$absent it does not start or compile here (clinfo: ${probe:-no device}; CPU flags: ${flags:-none of sse4_2 avx2 avx512f})"
        rm -rf "$icd"
        return
    fi
    cp /etc/OpenCL/vendors/*.icd "$icd/" 2>/dev/null || true
    export OCL_ICD_VENDORS=$icd
    echo "ci: OCL_ICD_VENDORS=$icd: Intel's OpenCL CPU runtime ${intel_ocl_pins[0]#*==} and the system's ICDs"
}
intel_ocl
unset -f intel_ocl

#!/usr/bin/env bash
# The prepared GPU run (shared/GPU.md): on a machine with an NVIDIA GPU, CUDA and PyTorch but no
# package registry, one command does everything and leaves its results under $OUT:
#   the OpenCL ICD loader and headers unpacked from carried .deb files (where the system lacks
#   them) and NVIDIA's OpenCL driver named to the loader; the build; `clattn devices`; `clattn run`
#   on the GPU against float64 (bench/gpu_peer.py check: dense, causal, window); `clattn
#   bench` on the GPU (dense and causal N = 4096, H = 32, D = 64 and 128; window +-256 at N = 4K
#   to 256K; decode with GQA); PyTorch's scaled_dot_product_attention in fp32 on the same shapes
#   (bench/gpu_peer.py) and a table of the two (summary.txt); the device tests; `clattn tune` on
#   dense D = 64 and 128 and decode's split; and ptxas's registers, stack frame and
#   spills for each program the driver compiled (its binaries are PTX), with its loops' SASS
#   (bench/sass_loops.py) where nvdisasm is found; and dense timed with each part of the kernel
#   left out in turn (bench/gpu_apart.py, step `apart`). The dense tunes save their
#   winners, and the bench runs dense and causal again with them (bench-tuned-*), the check too
#   (check-tuned-*).
# Every step runs even when an earlier one failed; steps.txt has each step's status and seconds.
# Prepare here with `bench/gpu.sh --fetch-debs`; on the GPU machine run `bench/gpu.sh` with the
# gpu-debs folder carried along (git ignores it). `--small` runs it all here on POCL.
#
# usage: bench/gpu.sh [--small] [--device SPEC] [--debs DIR] [--use-debs] [--only NAMES]
#        bench/gpu.sh --fetch-debs [--debs DIR]     (here, with a package registry)
#   --small       small sizes, to run the script end to end on a CPU device (POCL)
#   --device      clattn's device for the bench (default gpu)
#   --debs        folder of ocl-icd-libopencl1, ocl-icd-opencl-dev, opencl-c-headers and clinfo
#                 .deb files (default gpu-debs, which git ignores: `run` must carry it)
#   --use-debs    unpack them even where the system has an OpenCL loader and headers
#   --only        comma-separated names of the runs, tunes and steps to keep (dense-d64,
#                 dense-d128, window, decode, apart), for a shorter second call
#   --fetch-debs  download those packages into --debs with apt-get download, and stop
# Environment: OUT (default ./gpu-out), PYTHON (default python3, with torch), GPU_TEST_TIMEOUT
# (seconds for all the device tests, default 150, with --small 900), GPU_STEP_TIMEOUT (seconds
# for each bench, peer, tune or apart step, default 240), JOBS (build and test jobs, default nproc).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
small=0 device=gpu debs=gpu-debs use_debs=0 fetch=0 only='' tests_icd=()
while [ $# -gt 0 ]; do
    case $1 in
    --small) small=1 ;;
    --device) device=$2 && shift ;;
    --debs) debs=$2 && shift ;;
    --use-debs) use_debs=1 ;;
    --only) only=,$2, && shift ;;
    --fetch-debs) fetch=1 ;;
    *) sed -n 2,32p "$0" && exit 2 ;;
    esac
    shift
done
debs_packages=(ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-c-headers clinfo)
if [ "$fetch" = 1 ]; then
    mkdir -p "$debs" && cd "$debs" && apt-get download "${debs_packages[@]}" && ls -l
    exit
fi
out=$(realpath -m "${OUT:-gpu-out}")
mkdir -p "$out"
python=${PYTHON:-python3}
jobs=${JOBS:-$(nproc)}
started=$(date +%s)
: >"$out/steps.txt"
failures=0

# step NAME COMMAND...: runs it with its output in $out/NAME.txt (and the last lines on the
# terminal), records status and seconds in steps.txt.
step() {
    local name=$1 t0 rc
    shift
    t0=$(date +%s)
    echo "== $name: $*"
    "$@" >"$out/$name.txt" 2>&1
    rc=$?
    tail -n 15 "$out/$name.txt"
    printf '%-16s rc=%-3s %5ss  %s\n' "$name" "$rc" $(($(date +%s) - t0)) "$*" | tee -a "$out/steps.txt"
    [ "$rc" = 0 ] || failures=$((failures + 1))
    return "$rc"
}

# The machine, as found.
{
    date -u
    uname -a
    nvidia-smi 2>&1 | head -20
    ldconfig -p | grep -iE 'libOpenCL|nvidia-opencl' || echo "ldconfig: no libOpenCL or libnvidia-opencl"
    ls /etc/OpenCL/vendors 2>&1
    "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1
    command -v cmake cc gcc
} >"$out/machine.txt" 2>&1

# The ICD loader and headers: the system's, else the carried .deb files unpacked under /tmp (no
# system folder is written).
cmake_opencl=()
if [ "$use_debs" = 1 ] || ! ldconfig -p | grep -q 'libOpenCL\.so\.1 ' || [ ! -e /usr/include/CL/cl.h ]; then
    root=/tmp/clattn-opencl-root
    mkdir -p "$root"
    for f in "$debs"/*.deb; do
        [ -e "$f" ] || { echo "bench/gpu.sh: no OpenCL loader here and no .deb files in $debs" | tee -a "$out/steps.txt"; break; }
        dpkg -x "$f" "$root"
    done
    lib=$(dirname "$(find "$root" -name 'libOpenCL.so.1*' | head -1)")
    export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export PATH=$root/usr/bin:$PATH
    cmake_opencl=(-DOpenCL_INCLUDE_DIR="$root/usr/include" -DOpenCL_LIBRARY="$lib/libOpenCL.so.1")
    echo "OpenCL loader and headers from $debs, unpacked in $root" | tee -a "$out/steps.txt"
fi
# NVIDIA's OpenCL driver, named to the loader when the system's vendors folder does not.
if [ -z "${OCL_ICD_VENDORS:-}" ] && ! grep -qs nvidia /etc/OpenCL/vendors/*.icd; then
    nv=$({ ldconfig -p | sed -n 's/.*libnvidia-opencl\.so\.1 .*=> //p'
        ls /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so.1 /usr/local/nvidia/lib64/libnvidia-opencl.so.1 \
            /usr/lib64/libnvidia-opencl.so.1 /usr/local/cuda/compat/libnvidia-opencl.so.1; } 2>/dev/null | head -1)
    if [ -n "$nv" ]; then
        mkdir -p /tmp/clattn-icd /tmp/clattn-icd-gpu
        echo "$nv" >/tmp/clattn-icd/nvidia.icd
        echo "$nv" >/tmp/clattn-icd-gpu/nvidia.icd
        cp /etc/OpenCL/vendors/*.icd /tmp/clattn-icd/ 2>/dev/null
        export OCL_ICD_VENDORS=/tmp/clattn-icd
        tests_icd=(env OCL_ICD_VENDORS=/tmp/clattn-icd-gpu) # the device tests: the GPU alone
        echo "OCL_ICD_VENDORS=/tmp/clattn-icd: $nv" | tee -a "$out/steps.txt"
    else
        echo "no libnvidia-opencl.so.1 found: the system's OpenCL vendors only" | tee -a "$out/steps.txt"
    fi
fi
command -v clinfo >/dev/null && step clinfo clinfo -l

# No OpenBLAS baseline: at N = 4096 it took 5 s a run on the host's cores, most of the bench's time.
step configure cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCLATTN_BENCH_OPENBLAS=OFF "${cmake_opencl[@]}"
step build cmake --build build-gpu -j "$jobs"
step devices build-gpu/clattn devices
# clattn run on the device against float64, the table's tiles (odd N, B = 2, GQA): seconds, where
# the device tests below rarely finish in their time.
check_dir=$(mktemp -d)
step check timeout "${GPU_STEP_TIMEOUT:-240}" "$python" bench/gpu_peer.py check --clattn build-gpu/clattn \
    --device "$device" --dir "$check_dir"

# The bench and its peer on the same shapes: NAME, then `clattn bench` options (gpu_peer.py takes
# the same ones).
if [ "$small" = 1 ]; then
    runs=("dense-d64|--pattern dense,causal --n 256 --h 4 --d 64"
          "dense-d128|--pattern dense,causal --n 256 --h 4 --d 128"
          "window|--pattern window --window 256 --n 512,1024,2048 --h 4 --d 64"
          "decode|--pattern decode --n 1024,4096 --h 8 --hkv 2 --d 128")
    peer_device=$("$python" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")' 2>/dev/null ||
        echo cuda)
    repeat=(--repeat 3 --warmup 1)
    tunes=("dense-d64|--pattern dense --n 256 --h 4 --d 64|--pattern dense,causal --n 256 --h 4 --d 64"
           "decode|--pattern decode --n 4096 --h 8 --hkv 2 --d 128|")
    tune_env=(env CLATTN_VARIANT=gpu) # the GPU variant's spaces, on the CPU device
else
    runs=("dense-d64|--pattern dense,causal --n 4096 --h 32 --d 64"
          "dense-d128|--pattern dense,causal --n 4096 --h 32 --d 128"
          "window|--pattern window --window 256 --n 4096,16384,65536,262144 --h 32 --d 64"
          "decode|--pattern decode --n 4096,32768,131072 --h 32 --hkv 8 --d 128")
    peer_device=cuda
    repeat=(--repeat 5 --warmup 2)
    tunes=("dense-d64|--pattern dense --n 4096 --h 32 --d 64|--pattern dense,causal --n 4096 --h 32 --d 64"
           "decode|--pattern decode --n 131072 --h 32 --hkv 8 --d 128|"
           "dense-d128|--pattern dense --n 4096 --h 32 --d 128|--pattern dense,causal --n 4096 --h 32 --d 128")
    tune_env=()
fi
# --only: the runs and tunes named.
kept() { # NAME|...
    [ -z "$only" ] || [[ $only == *",${1%%|*},"* ]]
}
step_timeout=${GPU_STEP_TIMEOUT:-240}
# Compiled programs land in $out/programs: on NVIDIA they are PTX, which ptxas reads below.
programs=$out/programs
mkdir -p "$programs"
for run in "${runs[@]}"; do
    kept "$run" || continue
    name=${run%%|*}
    read -ra options <<<"${run#*|}"
    step "bench-$name" timeout "$step_timeout" build-gpu/clattn bench --device "$device" "${options[@]}" \
        "${repeat[@]}" --json --cache-dir "$programs"
    step "peer-$name" timeout "$step_timeout" "$python" bench/gpu_peer.py time "${options[@]}" "${repeat[@]}" \
        --device "$peer_device"
done
"$python" bench/gpu_peer.py summary "$out"/bench-*.txt "$out"/peer-*.txt >"$out/summary.txt" 2>&1 ||
    grep -h '^{' "$out"/bench-*.txt >"$out/summary.txt"

# The tile space on this device (clattn tune), dense at both head dimensions, and decode's split
# over the keys. Where a run follows the tune's options, the winner is saved in a
# cache folder of its own and the bench runs those shapes again with it (bench-tuned-NAME).
for run in "${tunes[@]}"; do
    kept "$run" || continue
    IFS='|' read -r name tune_options bench_options <<<"$run"
    read -ra options <<<"$tune_options"
    if [ -z "$bench_options" ]; then
        step "tune-$name" "${tune_env[@]}" timeout "$step_timeout" build-gpu/clattn tune --device "$device" \
            "${options[@]}" --repeat 3 --warmup 1 --cache-dir "$programs"
        continue
    fi
    tuned=$out/tuned-$name
    mkdir -p "$tuned"
    step "tune-$name" "${tune_env[@]}" timeout "$step_timeout" build-gpu/clattn tune --device "$device" \
        "${options[@]}" --repeat 3 --warmup 1 --cache-dir "$tuned" --save
    read -ra options <<<"$bench_options"
    step "bench-tuned-$name" timeout "$step_timeout" build-gpu/clattn bench --device "$device" "${options[@]}" \
        "${repeat[@]}" --cache-dir "$tuned"
    step "check-tuned-$name" env CLATTN_CACHE_DIR="$tuned" timeout "$step_timeout" "$python" bench/gpu_peer.py \
        check --clattn build-gpu/clattn --device "$device" --dir "$check_dir" \
        --d "$(sed -n 's/.*--d \([0-9]*\).*/\1/p' <<<"$tune_options")"
done

# The kernel taken apart (bench/gpu_apart.py run): a second build of the tool that reads its
# kernels from a copy of the tree, and dense at both head dimensions with one part of each key
# tile left out at a time, beside the whole kernel of the same build (with --small, the GPU
# variant forced on the CPU device, as in the tunes). Wrong results by design: only the times
# count.
if [ "$small" = 1 ]; then apart_shape=(--n 256 --h 4); else apart_shape=(--n 4096 --h 32); fi
kept "apart|" && step apart "${tune_env[@]}" timeout "$step_timeout" "$python" bench/gpu_apart.py run --device "$device" \
    "${apart_shape[@]}" "${repeat[@]}" --jobs "$jobs" "${cmake_opencl[@]/#/--cmake-arg=}"

# The whole suite takes about 5 minutes on 2 CPU cores (POCL and Intel's runtime): --small, which
# runs there, waits longer. It follows the bench and the tunes, so that a slow suite leaves the
# figures standing. Where this script named NVIDIA's driver to the loader, the tests see the GPU
# alone: on the H200 machine they also ran on its host's POCL, which doubled their work (the
# second session's 150 s did not finish them) and whose 5.0 release aborted in the first.
test_timeout=${GPU_TEST_TIMEOUT:-$([ "$small" = 1 ] && echo 900 || echo 150)}
step tests "${tests_icd[@]}" timeout "$test_timeout" ctest --test-dir build-gpu --output-on-failure -j "$jobs" --timeout 200

# What NVIDIA's own compiler made of each program: registers, stack frame and spills (ptxas -v on
# the PTX that the driver returned as the program's binary, less the NUL bytes that end it), and
# where nvdisasm is found, each loop's instructions, schedule and registers held across it
# (bench/sass_loops.py; the SASS is kept beside the PTX). Other drivers' binaries are skipped.
ptx_resources() {
    local f found=0
    for f in "$programs"/*.bin "$out"/tuned-*/*.bin; do
        [ -e "$f" ] || continue
        head -c 4096 "$f" | grep -aq '^\.target sm_' || continue
        found=1
        {
            echo "== $f: $(grep -m3 -o '^\.entry [A-Za-z0-9_]*\|^\.visible \.entry [A-Za-z0-9_]*' "$f" | tr '\n' ' ')"
            tr -d '\000' <"$f" >"${f%.bin}.ptx"
            ptxas -arch="$(sed -n 's/^\.target \(sm_[0-9a-z]*\).*/\1/p' "$f" | head -1)" -v "${f%.bin}.ptx" \
                -o "${f%.bin}.cubin" 2>&1 | grep -E 'Compiling|Used|stack|spill|error'
            if command -v nvdisasm >/dev/null && nvdisasm -c -hex -plr -lrm narrow "${f%.bin}.cubin" >"${f%.bin}.sass" 2>&1; then
                "$python" bench/sass_loops.py "${f%.bin}.sass"
            else
                echo "no SASS: nvdisasm is missing or failed"
            fi
            rm -f "${f%.bin}.cubin"
        } >"$f.ptxas" &
    done
    wait
    if [ "$found" = 1 ]; then
        cat "$programs"/*.ptxas "$out"/tuned-*/*.ptxas 2>/dev/null || true # no tuned-* after some --only
    else
        echo "no PTX among the programs (not an NVIDIA driver)"
    fi
}
command -v ptxas >/dev/null || PATH=$PATH:/usr/local/cuda/bin
command -v ptxas >/dev/null && step ptxas ptx_resources
cat "$out/summary.txt"
echo "bench/gpu.sh: $failures step(s) failed, $(($(date +%s) - started)) s in all; results in $out" |
    tee -a "$out/steps.txt"
[ "$failures" = 0 ]

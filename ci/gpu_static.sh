#!/usr/bin/env bash
# CI step: the GPU programs checked for real GPUs without one (see shared/GPU-DESIGN.md).
# 1. Resources: each GPU program at the build options that plans choose on an NVIDIA H200 and an
#    AMD gfx906 (BUILD/clattn_gpu_profile options, from the library's tile table; on NVIDIA also on
#    tensor cores, with and without asynchronous copies), D = 64 and 128,
#    compiled by clang-15 and libclc for sm_90 (nvptx, then CUDA's ptxas -v) and gfx906 (amdgcn
#    resource remarks): registers, stack frame, spills, scratch and __local per kernel. A stack
#    frame, a spill or scratch fails. Without ptxas (PTXAS, PATH, /usr/local/cuda/bin) the sm_90
#    half says so and is skipped.
# 2. Coalescing: clattn_gpu_profile's sample runs (dense causal, decode, global rows, a 2-D
#    neighborhood) under
#    Oclgrind with NVIDIA's 48 KB of __local and ci/oclgrind-coalesce's plugin (warps of 32):
#    sectors per global request and wavefronts per __local request against the ideal, for each
#    kernel's hot lines (GPU_STATIC_HOT of its requests or more). Above 1.1x the ideal fails.
# Only the kernels named in GPU_STATIC_KERNELS fail the step (by default the GPU variant's
# attention, split, merge and 2-D grid kernels); the others are printed.
# usage: ci/gpu_static.sh [BUILD_DIR]   (after the build: it runs BUILD/clattn_gpu_profile)
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
enforced=" ${GPU_STATIC_KERNELS:-attention split_keys merge_splits grid_attention} "
hot=${GPU_STATIC_HOT:-0.05}
clc=/usr/lib/clc
profile=$build/clattn_gpu_profile
for need in clang-15 oclgrind g++ "$clc/nvptx64--nvidiacl.bc" "$clc/gfx906-amdgcn--.bc" "$profile"; do
    if ! command -v "$need" >/dev/null && [ ! -e "$need" ]; then
        echo "ci/gpu_static.sh: $need is missing (ci/install.sh installs clang-15 libclc-15 oclgrind; build first)" >&2
        exit 1
    fi
done
# PTXAS names ptxas (empty: none); by default the one on PATH, else CUDA's usual place.
ptxas=${PTXAS-$(command -v ptxas || true)}
[ -n "${PTXAS+set}" ] || [ -n "$ptxas" ] || [ ! -x /usr/local/cuda/bin/ptxas ] || ptxas=/usr/local/cuda/bin/ptxas
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

# verdict KERNEL BAD: "ok", "FAIL" (counted in $tmp/failures: it runs in a subshell) or, for a
# kernel not enforced, "over (not enforced)".
verdict() {
    if [ "$2" = 0 ]; then
        echo ok
    elif [[ $enforced == *" $1 "* ]]; then
        echo "$1" >>"$tmp/failures"
        echo FAIL
    else
        echo "over (not enforced)"
    fi
}

# The text of a program ("common+decode_gpu") as the library builds it: its files concatenated.
program_source() {
    local f
    for f in ${1//+/ }; do cat "cl/$f.cl"; done
}

clang_cl=(clang-15 -x cl -cl-std=CL1.2 -nogpulib -O3 -Xclang -finclude-default-header)

# sm_90: the PTX of clang's nvptx backend through ptxas -v, one line per function.
check_sm90() { # LABEL SOURCE OPTIONS...
    local label=$1 src=$2 name frame sst sld regs smem
    shift 2
    if ! "${clang_cl[@]}" "$@" -target nvptx64-nvidia-nvcl -Xclang -mlink-builtin-bitcode \
        -Xclang "$clc/nvptx64--nvidiacl.bc" -S "$src" -o "$tmp/k.ptx" 2>"$tmp/err"; then
        echo "sm_90  $label: nvptx compile FAIL: $(grep -m3 error "$tmp/err")"
        failed=$((failed + 1))
        return
    fi
    if [ -z "$ptxas" ]; then
        echo "sm_90  $label: SKIP: no ptxas (CUDA toolkit) on PATH or in /usr/local/cuda/bin"
        return
    fi
    "$ptxas" -arch=sm_90 -v "$tmp/k.ptx" -o "$tmp/k.cubin" >"$tmp/ptxas" 2>&1 || {
        echo "sm_90  $label: ptxas FAIL: $(head -3 "$tmp/ptxas")"
        failed=$((failed + 1))
        return
    }
    # "Function properties for F" / "N bytes stack frame, N bytes spill stores, N bytes spill
    # loads" / "Used N registers, ..., N bytes cumulative stack size, N bytes smem" (the last for
    # entry functions only).
    while read -r name frame sst sld regs smem; do
        printf 'sm_90  %-40s %-13s %3s registers  %5s B stack  %4s B spill st  %4s B spill ld  %6s B local  %s\n' \
            "$label" "$name" "$regs" "$frame" "$sst" "$sld" "$smem" \
            "$(verdict "$name" $((frame + sst + sld)))"
    done < <(awk '/Function properties for/ { if (n) print n, f, ss, sl, r, m; n = $NF; r = "-"; m = 0 }
                  /bytes stack frame/ { f = $1; ss = $5; sl = $9 }
                  /Used [0-9]+ registers/ { for (i = 1; i < NF; i++) { if ($(i + 1) == "registers,") r = $i;
                                                                        if ($(i + 1) == "bytes" && $(i + 2) ~ /^smem/) m = $i
                                                                        # with the frames of the functions it calls
                                                                        if ($(i + 2) == "cumulative" && $i > f) f = $i } }
                  END { if (n) print n, f, ss, sl, r, m }' "$tmp/ptxas")
}

# gfx906: clang's amdgcn backend and its kernel-resource-usage remarks, one line per kernel.
check_gfx906() { # LABEL SOURCE OPTIONS...
    local label=$1 src=$2 name vgprs vspill sspill scratch lds occ
    shift 2
    # The remarks come from code generation; the assembler may refuse this non-HSA triple.
    "${clang_cl[@]}" "$@" -target amdgcn-- -mcpu=gfx906 -Xclang -mlink-builtin-bitcode \
        -Xclang "$clc/gfx906-amdgcn--.bc" -Rpass-analysis=kernel-resource-usage -S "$src" -o "$tmp/k.s" \
        2>"$tmp/err" || true
    if ! grep -q "Function Name:" "$tmp/err"; then
        echo "gfx906 $label: amdgcn compile FAIL: $(grep -m3 error "$tmp/err")"
        failed=$((failed + 1))
        return
    fi
    while read -r name vgprs vspill sspill scratch lds occ; do
        printf 'gfx906 %-40s %-13s %3s VGPRs  %4s VGPR spill  %4s SGPR spill  %6s B scratch/lane  %6s B LDS  occupancy %s  %s\n' \
            "$label" "$name" "$vgprs" "$vspill" "$sspill" "$scratch" "$lds" "$occ" \
            "$(verdict "$name" $((vspill + sspill + scratch)))"
    done < <(sed -n 's/.*remark: *//p' "$tmp/err" |
        awk -F': *' '/^Function Name/ { if (n) print n, v, vs, ss, sc, l, o; n = $2; v = vs = ss = sc = l = o = 0 }
                     /^VGPRs:/ { v = $2 } /^VGPRs Spill/ { vs = $2 } /^SGPRs Spill/ { ss = $2 }
                     /^ScratchSize/ { sc = $2 } /^LDS Size/ { l = $2 } /^Occupancy/ { o = $2 }
                     END { if (n) print n, v, vs, ss, sc, l, o }' | sed 's/ \[-Rpass-analysis=kernel-resource-usage\]//g')
}

echo "== GPU resources: ptxas ${ptxas:-absent}, $(clang-15 --version | head -1)"
for vendor in nvidia amd; do
    for d in 64 128; do
        "$profile" options "$vendor" "$d" >"$tmp/programs"
        while read -r program options; do
            program_source "$program" >"$tmp/program.cl"
            # shellcheck disable=SC2086 # the options are words
            if [[ $options == *-DCLATTN_MMA=1* ]]; then
                # The rows on tensor cores (clattn_tiles.mma 1, the tune's candidates), with warp
                # shuffles, the second with K and V a step ahead by cp.async (clattn_tiles.async 1):
                # mma.sync on TF32 and cp.async want PTX for sm_80 or later, clang's newest is sm_86.
                label="D=$d $program, tensor cores"
                [[ $options != *-DCLATTN_ASYNC=1* ]] || label+=", cp.async"
                check_sm90 "$label" "$tmp/program.cl" $options -Xclang -target-cpu -Xclang sm_86
            elif [ "$vendor" = nvidia ]; then
                check_sm90 "D=$d $program" "$tmp/program.cl" $options
                # The same tiles with warp shuffles (clattn_tiles.shuffle 1, the tune's candidates):
                # shfl.sync wants PTX for sm_30 or later, so clang targets its newest, sm_86.
                [[ $options != *-DCLATTN_SHUFFLE=0* ]] ||
                    check_sm90 "D=$d $program, shuffle" "$tmp/program.cl" ${options/-DCLATTN_SHUFFLE=0/-DCLATTN_SHUFFLE=1} \
                        -Xclang -target-cpu -Xclang sm_86
            else
                check_gfx906 "D=$d $program" "$tmp/program.cl" $options
            fi
        done <"$tmp/programs"
    done
done

echo "== Coalescing under Oclgrind: warps of 32 lanes, hot lines (>= $hot of a kernel's requests)"
# The plugin is built against the LLVM that Oclgrind links (llvm-dev's headers).
llvm=$({ ldd /usr/lib/*/liboclgrind-*.so 2>/dev/null || true; } | sed -n 's/.*libLLVM-\([0-9]*\).*/\1/p' | head -1)
if [ -z "$llvm" ] || [ ! -d "/usr/lib/llvm-$llvm/include" ] || [ ! -d /usr/include/oclgrind ]; then
    echo "ci/gpu_static.sh: Oclgrind's headers or its LLVM's (${llvm:-unknown version}) are missing" \
        "(ci/install.sh installs liboclgrind-dev llvm-dev)" >&2
    exit 1
fi
g++ -O2 -std=c++17 -fPIC -fno-rtti -shared -I/usr/include/oclgrind -I"/usr/lib/llvm-$llvm/include" ci/oclgrind-coalesce/coalesce.cpp \
    -o "$tmp/libcoalesce.so"
# Which program lines are which file's: "KERNEL FILE FIRST LAST" for every file of each kernel's
# program (lines FIRST..LAST of the program are the file's lines 1..): the GPU programs, and the
# side keys' gather, which the sample runs with global tokens launch. A kernel's name is the word
# after `void` that follows `__kernel`, attributes and preprocessor lines between them.
{ "$profile" options nvidia 64 && echo common+side_keys; } | awk '!seen[$1]++' | while read -r program _; do
    kernels=$(for f in ${program//+/ }; do
        perl -0ne 'print "$1\n" while /__kernel\b.*?\bvoid\s+(\w+)\s*\(/sg' "cl/$f.cl"
    done)
    offset=0
    for f in ${program//+/ }; do
        n=$(wc -l <"cl/$f.cl")
        for k in $kernels; do echo "$k $f $((offset + 1)) $((offset + n))"; done
        offset=$((offset + n))
    done
done >"$tmp/kernels"
for d in 64 128; do
    oclgrind --local-mem-size 49152 --plugins "$tmp/libcoalesce.so" "$profile" run nvidia "$d" >"$tmp/run" 2>&1 || {
        cat "$tmp/run"
        echo "ci/gpu_static.sh: clattn_gpu_profile run failed under Oclgrind" >&2
        exit 1
    }
    grep -v '^coalesce ' "$tmp/run" | sed "s/^/D=$d /"
    # One line per hot line and kernel, each kernel's launches together.
    while read -r kernel line space op requests share measured ideal; do
        where=$(awk -v k="$kernel" -v l="$line" '$1 == k && l >= $3 && l <= $4 { printf "%s.cl:%d", $2, l - $3 + 1; found = 1 }
                                                  END { if (!found) printf "line %d", l }' "$tmp/kernels")
        over=$(awk -v m="$measured" -v i="$ideal" 'BEGIN { print (m > 1.1 * i) ? 1 : 0 }')
        printf 'D=%-4s %-13s %-22s %-6s %-5s %8s requests  %5.1f%%  %6.2f %s per request (ideal %.2f)  %s\n' \
            "$d" "$kernel" "$where" "$space" "$op" "$requests" "$(awk -v s="$share" 'BEGIN { print 100 * s }')" \
            "$measured" "$([ "$space" = local ] && echo wavefronts || echo sectors)" "$ideal" "$(verdict "$kernel" "$over")"
    done < <(sed -n 's/^coalesce //p' "$tmp/run" | tr '=' ' ' |
        awk '{ key = $2 " " $4 " " $6 " " $8; r[key] += $10; s[key] += $12; m[key] += $14 * $10; i[key] += $16 * $10;
               runs[key]++ }
             END { for (k in r) if (s[k] / runs[k] >= '"$hot"') print k, r[k], s[k] / runs[k], m[k] / r[k], i[k] / r[k] }' |
        sort -k1,1 -k5,5nr)
done

[ ! -s "$tmp/failures" ] || failed=$((failed + $(wc -l <"$tmp/failures")))
if [ "$failed" -gt 0 ]; then
    echo "ci/gpu_static.sh: $failed check(s) failed (enforced kernels:$enforced)" >&2
    exit 1
fi
skipped=
[ -n "$ptxas" ] || skipped="; sm_90 SKIPPED: no ptxas"
echo "ci/gpu_static.sh: passed (enforced kernels:$enforced)$skipped"

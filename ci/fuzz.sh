#!/usr/bin/env bash
# CI step: libFuzzer on the .npy reader and on `clattn run`'s argument parsing, 30 s each, with
# AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-fuzz
mkdir -p "$out/corpus_npy" "$out/corpus_args"
flags=(-g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Itools)
clang "${flags[@]}" tests/fuzz_npy.c tools/npy.c tools/npy_header.c tools/tool_error.c -o "$out/fuzz_npy"
clang "${flags[@]}" tests/fuzz_args.c tools/run_args.c -o "$out/fuzz_args"
printf '\x93NUMPY\x01\x00\x46\x00{"descr": "<f4", "fortran_order": False, "shape": (2, 1), }          \n\0\0\0\0\0\0\0\0' \
    >"$out/corpus_npy/seed"
printf '\x93NUMPY\x01\x00\x46\x00{"descr": "<f2", "fortran_order": False, "shape": (2, 1), }          \n\0\0\0\0' \
    >"$out/corpus_npy/seed_f16"
printf '\x93NUMPY\x01\x00\x46\x00{"descr": "<V2", "fortran_order": False, "shape": (2, 1), }          \n\0\0\0\0' \
    >"$out/corpus_npy/seed_bf16"
printf -- '--window\0005,3\000--global\0001,2\000--grid-pattern\000neighborhood=3,3,2\000--seq-lens\0004' \
    >"$out/corpus_args/seed"
for target in npy args; do
    log="$out/fuzz_$target.log"
    if ! "$out/fuzz_$target" -max_total_time=30 "$out/corpus_$target" >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "ci/fuzz.sh: fuzz_$target found a failure (full log: $log)" >&2
        exit 1
    fi
    echo "fuzz_$target: $(grep -E '^Done' "$log")"
done

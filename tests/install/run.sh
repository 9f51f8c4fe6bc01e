#!/usr/bin/env bash
# The installed package end to end (ctest's test_install): `cmake --install` of the build tree into
# a temporary prefix, then tests/install/consumer.c built against it through find_package(clattn)
# and through pkg-config, each on the shared and on the static library, and run from a folder
# outside both trees. Usage: run.sh BUILD_DIR C_COMPILER. Exit 77 (skipped) without an OpenCL device.
set -euo pipefail
build=$(realpath "$1")
cc=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

fail() {
    echo "test_install: $*" >&2
    exit 1
}

cmake --install "$build" --prefix "$prefix" >/dev/null
echo "installed:"
(cd "$prefix" && find . -mindepth 1 \( -type f -o -type l \) | sort | sed 's/^/  /')

# Only the API leaves the shared library: every exported function is clattn_*, none clattn__*.
so=$(find "$prefix" -name 'libclattn.so.*.*.*' | head -n 1)
exported=$(nm -D --defined-only "$so" | awk '{print $3}')
[ -n "$exported" ] || fail "$so exports nothing"
if stray=$(grep -vE '^clattn_[a-z]' <<<"$exported"); then
    fail "$so exports what is not the API: $stray"
fi
soname=$(readelf -d "$so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
echo "exported: $(wc -l <<<"$exported") symbols, all clattn_*; SONAME $soname"

cmake -S "$here" -B "$tmp/cmake" -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; fail "find_package failed"; }
cmake --build "$tmp/cmake" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "the CMake consumer did not build"; }

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pc_cflags=$(pkg-config --cflags clattn)
pc_libs=$(pkg-config --libs clattn)
pc_static=$(pkg-config --static --libs clattn)
libdir=$(pkg-config --variable=libdir clattn)
mkdir -p "$tmp/pc"
# shellcheck disable=SC2086 # the flags are lists of words
"$cc" "$here/consumer.c" $pc_cflags $pc_libs -lm -Wl,-rpath,"$libdir" -o "$tmp/pc/consumer_shared"
# shellcheck disable=SC2086
"$cc" "$here/consumer.c" $pc_cflags ${pc_static/-lclattn/-l:libclattn.a} -o "$tmp/pc/consumer_static"

skipped=""
cd "$tmp" # neither tree: the kernels must come from inside the library
for program in cmake/consumer_shared cmake/consumer_static pc/consumer_shared pc/consumer_static; do
    needed=$(readelf -d "$program" | grep -c 'NEEDED.*libclattn' || true)
    case $program in
        *_shared) [ "$needed" = 1 ] || fail "$program does not load libclattn.so" ;;
        *_static) [ "$needed" = 0 ] || fail "$program loads libclattn.so though it links the static library" ;;
    esac
    status=0
    "./$program" || status=$?
    case $status in
        0) echo "$program: passed" ;;
        77) skipped=1 ;;
        *) fail "$program exited with $status" ;;
    esac
done
if [ -n "$skipped" ]; then
    exit 77
fi

#!/usr/bin/env bash
# CI step: the C and OpenCL sources are formatted as .clang-format says. Versions of clang-format
# lay lines out differently, so the check is pinned to Debian 12's (14); with another version it
# says so and skips. `ci/format.sh --fix` rewrites the files in place.
set -euo pipefail
cd "$(dirname "$0")/.."
pinned=14
mapfile -t files < <(git ls-files 'include/*.h' 'host/*.[ch]' 'cl/*.cl' 'bench/*.[ch]' 'bench/*.cl' \
    'tools/*.[ch]' 'tests/*.[ch]')
if [ "${1:-}" = --fix ]; then
    clang-format -i "${files[@]}"
    exit 0
fi
version=$(clang-format --version | grep -o '[0-9][0-9.]*' | head -1)
if [ "${version%%.*}" != "$pinned" ]; then
    echo "ci/format.sh: SKIP: clang-format $version here; the check is pinned to version $pinned"
    exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}"; then
    echo "ci/format.sh: unformatted code; run ci/format.sh --fix (clang-format $version)" >&2
    exit 1
fi
echo "ci/format.sh: ${#files[@]} files formatted as .clang-format says"

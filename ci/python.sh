#!/usr/bin/env bash
# The Python package's tests: `pip install .` into a fresh virtual environment, then pytest
# (python/tests). The test dependencies (pytest, PyOpenCL, PyTorch: PyTorch alone is several GiB;
# ml_dtypes: NumPy's bfloat16) are installed once, pinned, into a venv of their own
# (CLATTN_PYTHON_DEPS, default /opt/clattn-python-deps) that the fresh venv sees through a .pth
# file, so each run installs only clattn. A change of the pins installs into that venv what changed
# (pip leaves the pins already met alone), so a new pin does not download PyTorch again. Sourced or
# run by ci/test.sh after the C tests.
set -euo pipefail
cd "$(dirname "$0")/.."
deps=$(realpath -m "${CLATTN_PYTHON_DEPS:-/opt/clattn-python-deps}")
pins=(numpy==2.4.6 pytest==9.2.0 pyopencl==2026.1.4 torch==2.15.0 ml_dtypes==0.7.0)
pip_flags=(--quiet --disable-pip-version-check --timeout 60 --retries 3)

if [ "$(cat "$deps/clattn-pins" 2>/dev/null)" != "${pins[*]}" ]; then
    echo "ci/python.sh: installing ${pins[*]} into $deps"
    if ! "$deps/bin/python" -c '' 2>/dev/null; then # none yet, or not a working venv
        rm -rf "$deps"
        python3 -m venv "$deps"
    fi
    rm -f "$deps/clattn-pins" # until the install has finished
    "$deps/bin/pip" install "${pip_flags[@]}" "${pins[@]}"
    echo "${pins[*]}" >"$deps/clattn-pins"
fi

venv=build-python/venv
rm -rf "$venv"
python3 -m venv "$venv"
site() { "$1/bin/python" -c "import sysconfig; print(sysconfig.get_path('purelib'))"; }
site "$deps" >"$(site "$venv")/clattn-test-deps.pth"
"$venv/bin/pip" install "${pip_flags[@]}" .
# From outside the tree, so that `import clattn` is the installed package, not python/clattn.
cd python/tests
"../../$venv/bin/python" -m pytest -q -rs -p no:cacheprovider .

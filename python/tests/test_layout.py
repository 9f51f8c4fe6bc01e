"""The ctypes structs of clattn/_library.py against the C headers: a program compiled from
include/ prints every field's offset and every struct's size, and the status names. A field added
to a C struct (new fields go at the end) fails here until the Python struct has it too."""
import ctypes
import pathlib
import shutil
import subprocess

import pytest

import clattn
from clattn import _errors, _library

INCLUDE = pathlib.Path(__file__).resolve().parents[2] / "include"
STRUCTS = {
    "clattn_problem": _library.Problem,
    "clattn_context_desc": _library.ContextDesc,
    "clattn_host_tensor": _library.HostTensor,
    "clattn_host_tensors": _library.HostTensors,
    "clattn_buffers": _library.Buffers,
    "clattn_device_info": _library.DeviceInfo,
}


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory):
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None or not (INCLUDE / "clattn.h").exists():
        pytest.skip("needs a C compiler and the source tree's include/")
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "clattn_advanced.h"', "int main(void) {"]
    for c_name, struct in STRUCTS.items():
        lines.append(f'printf("{c_name} size %zu\\n", sizeof({c_name}));')
        for field, _ in struct._fields_:
            lines.append(f'printf("{c_name} {field} %zu\\n", offsetof({c_name}, {field}));')
    lines.append('#define STATUS_(name, value, text) printf("status CLATTN_STATUS_" #name " %d\\n", value);')
    lines += ["CLATTN_STATUS_TABLE(STATUS_)", "return 0; }"]
    folder = tmp_path_factory.mktemp("layout")
    (folder / "layout.c").write_text("\n".join(lines) + "\n")
    subprocess.run([compiler, f"-I{INCLUDE}", "layout.c", "-o", "layout"], cwd=folder, check=True)
    printed = subprocess.run([str(folder / "layout")], check=True, capture_output=True, text=True).stdout
    return {tuple(line.split()[:2]): int(line.split()[2]) for line in printed.splitlines()}


@pytest.mark.parametrize("c_name", STRUCTS)
def test_struct(c_layout, c_name):
    struct = STRUCTS[c_name]
    assert ctypes.sizeof(struct) == c_layout[(c_name, "size")], f"{c_name} has fields _library.py lacks"
    for field, _ in struct._fields_:
        assert getattr(struct, field).offset == c_layout[(c_name, field)], f"{c_name}.{field}"


def test_statuses(c_layout):
    table = {name: value for (kind, name), value in c_layout.items() if kind == "status" and value}
    assert _errors.STATUS == table
    assert clattn.Error(table["CLATTN_STATUS_INVALID_WINDOW"]).name == "CLATTN_STATUS_INVALID_WINDOW"
    assert clattn.Error(-5).name == "CL_OUT_OF_RESOURCES"

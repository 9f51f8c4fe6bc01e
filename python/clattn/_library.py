"""The bundled libclattn through ctypes: the C structs of include/clattn.h and
include/clattn_advanced.h, field for field, and the prototypes of the functions the package calls.
tests/test_layout.py compiles the headers and checks these layouts against them."""
import ctypes
import glob
import os

cl_handle = ctypes.c_void_p  # cl_context, cl_device_id, cl_command_queue, cl_mem, cl_event


class Problem(ctypes.Structure):
    """clattn_problem."""

    _fields_ = [
        ("batch", ctypes.c_int),
        ("heads", ctypes.c_int),
        ("kv_heads", ctypes.c_int),
        ("q_len", ctypes.c_int),
        ("kv_len", ctypes.c_int),
        ("head_dim", ctypes.c_int),
        ("value_dim", ctypes.c_int),
        ("scale", ctypes.c_float),
        ("causal", ctypes.c_int),
        ("window", ctypes.c_int),
        ("window_left", ctypes.c_int),
        ("window_right", ctypes.c_int),
        ("dilation", ctypes.c_int),
        ("global_idx", ctypes.POINTER(ctypes.c_int)),
        ("num_global", ctypes.c_int),
        ("global_qkv", ctypes.c_int),
        ("summary_block", ctypes.c_int),
        ("extra_len", ctypes.c_int),
        ("grid_pattern", ctypes.c_int),
        ("grid_h", ctypes.c_int),
        ("grid_w", ctypes.c_int),
        ("grid_kernel_h", ctypes.c_int),
        ("grid_kernel_w", ctypes.c_int),
        ("grid_dilation", ctypes.c_int),
        ("grid_window_size", ctypes.c_int),
        ("grid_shift", ctypes.c_int),
        ("summary_tail", ctypes.c_int),
        ("dtype", ctypes.c_int),  # clattn_dtype: 0 float32, 1 float16, 2 bfloat16 (_tensors.STORAGE)
    ]


LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)


class ContextDesc(ctypes.Structure):
    """clattn_context_desc."""

    _fields_ = [
        ("device", ctypes.c_char_p),
        ("cache_dir", ctypes.c_char_p),
        ("log", LOG_FN),
        ("log_user", ctypes.c_void_p),
    ]


class HostTensor(ctypes.Structure):
    """clattn_host_tensor."""

    _fields_ = [("data", ctypes.c_void_p), ("bytes", ctypes.c_size_t)]


TENSOR_NAMES = ("q", "k", "v", "out", "lse", "qg", "kg", "vg", "kx", "vx")


class HostTensors(ctypes.Structure):
    """clattn_host_tensors."""

    _fields_ = [(name, HostTensor) for name in TENSOR_NAMES] + [("seq_lens", ctypes.POINTER(ctypes.c_int))]


class Buffers(ctypes.Structure):
    """clattn_buffers."""

    _fields_ = [(name, cl_handle) for name in TENSOR_NAMES] + [("seq_lens", ctypes.POINTER(ctypes.c_int))]


class DeviceInfo(ctypes.Structure):
    """clattn_device_info (clattn_advanced.h)."""

    _fields_ = [
        ("spec", ctypes.c_char * 16),
        ("name", ctypes.c_char * 256),
        ("type", ctypes.c_uint64),
        ("id", cl_handle),
    ]


def _path():
    """$CLATTN_LIBRARY (a build tree's library, while developing), else the one the wheel holds."""
    path = os.environ.get("CLATTN_LIBRARY")
    if path:
        return path
    found = sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "libclattn.so*")))
    if not found:
        raise ImportError("clattn: no libclattn.so beside the package; install it with `pip install .`")
    return found[0]


_P = ctypes.POINTER
_c = ctypes
_PROTOTYPES = {
    "clattn_version": (_c.c_char_p, []),
    "clattn_status_string": (_c.c_char_p, [_c.c_int]),
    "clattn_status_name": (_c.c_char_p, [_c.c_int]),
    "clattn_context_create": (_c.c_int, [_P(ContextDesc), _P(_c.c_void_p)]),
    "clattn_context_wrap": (_c.c_int, [cl_handle, cl_handle, cl_handle, _P(ContextDesc), _P(_c.c_void_p)]),
    "clattn_context_free": (None, [_c.c_void_p]),
    "clattn_context_message": (_c.c_char_p, [_c.c_void_p]),
    "clattn_context_is_reference": (_c.c_int, [_c.c_void_p]),
    "clattn_context_device_name": (_c.c_char_p, [_c.c_void_p]),
    "clattn_plan_create": (_c.c_int, [_c.c_void_p, _P(Problem), _P(_c.c_void_p)]),
    "clattn_plan_free": (None, [_c.c_void_p]),
    "clattn_plan_enqueue": (_c.c_int, [_c.c_void_p, cl_handle, _P(Buffers), _c.c_uint32, _P(cl_handle), _P(cl_handle)]),
    "clattn_plan_run_host": (_c.c_int, [_c.c_void_p, _P(HostTensors)]),
    "clattn_device_list": (_c.c_int, [_P(DeviceInfo), _c.c_int, _P(_c.c_int)]),
}


def _load():
    path = _path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as error:  # most often: no OpenCL ICD loader (libOpenCL.so.1) on this machine
        raise ImportError(f"clattn: cannot load {path}: {error}") from error
    for name, (restype, argtypes) in _PROTOTYPES.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


lib = _load()

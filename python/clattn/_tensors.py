"""The array kinds clattn.attention takes (NumPy arrays, PyTorch CPU tensors, PyOpenCL arrays)
and their storage types (SPEC.md, "Element types": float32, float16, bfloat16, one per call). A
host array becomes a contiguous NumPy view (a copy only when it is not contiguous); a PyOpenCL
array stays a device buffer. Outputs are made in the kind and storage type of Q (LSE float32)."""
import sys

import numpy as np

# The storage types the library takes, by dtype name (NumPy's and PyTorch's agree; NumPy's
# bfloat16 is ml_dtypes'), and the values of clattn_problem.dtype (clattn_dtype).
STORAGE = {"float32": 0, "float16": 1, "bfloat16": 2}


def storage_of(name, dtype_name):
    """The storage type of a tensor named `name`, or TypeError for one the library lacks."""
    if dtype_name not in STORAGE:
        raise TypeError(f"clattn: {name} is {dtype_name}; tensors must be float32, float16 or bfloat16")
    return dtype_name


def _torch_tensor(x):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def is_pyopencl(x):
    array = getattr(sys.modules.get("pyopencl"), "array", None)
    return array is not None and isinstance(x, array.Array)


def _torch_numpy(x):
    """A contiguous CPU tensor's memory as a NumPy array: NumPy has no bfloat16 of its own, so a
    bfloat16 tensor is viewed as int16, the same bytes (the library reads bytes of its storage)."""
    import torch

    return (x.view(torch.int16) if x.dtype == torch.bfloat16 else x).numpy()


class HostArray:
    """A NumPy or PyTorch CPU tensor as the library reads it: `array`, a C-contiguous NumPy view
    (or copy) of its memory in the machine's byte order, `storage` its storage type, `torch`
    whether it came from PyTorch."""

    def __init__(self, name, x):
        self.torch = _torch_tensor(x)
        if self.torch:
            if x.device.type != "cpu":
                raise TypeError(f"clattn: {name} is a PyTorch tensor on {x.device}; only CPU tensors are taken")
            self.storage = storage_of(name, str(x.dtype).removeprefix("torch."))
            x = _torch_numpy(x.detach().contiguous())
        elif isinstance(x, np.ndarray):
            self.storage = storage_of(name, x.dtype.name)
            if not x.dtype.isnative:  # '>f4' and the like: the library reads the machine's byte order
                x = x.astype(x.dtype.newbyteorder("="))
            self.dtype = x.dtype  # bfloat16's is ml_dtypes', which np.dtype("bfloat16") may not know
        else:
            raise TypeError(f"clattn: {name} is a {type(x).__name__}; expected a NumPy array, a PyTorch CPU tensor "
                            "or a PyOpenCL array")
        self.array = np.ascontiguousarray(x)
        self.shape = self.array.shape

    def empty(self, shape, storage=None):
        """An output of `shape` in this tensor's kind, of its storage type or `storage` (LSE is
        float32 whatever the storage): (the object to return, the NumPy view the library writes)."""
        if self.torch:
            import torch

            out = torch.empty(shape, dtype=getattr(torch, storage or self.storage))
            return out, _torch_numpy(out)
        out = np.empty(shape, dtype=storage or self.dtype)
        return out, out


class DeviceArray:
    """A PyOpenCL array that the library reads in place: its buffer, queue and pending events."""

    def __init__(self, name, x):
        self.storage = storage_of(name, x.dtype.name)
        if not x.dtype.isnative:
            raise TypeError(f"clattn: {name} is a PyOpenCL array of byte order '{x.dtype.byteorder}'; the library "
                            "reads the machine's")
        if not x.flags.c_contiguous:
            raise TypeError(f"clattn: {name} is a non-contiguous PyOpenCL array; make it contiguous first")
        if x.offset:
            x = x.copy()  # a device copy: the library takes whole buffers
        self.array = x
        self.shape = x.shape

    @property
    def buffer(self):
        return self.array.base_data.int_ptr

    def empty(self, shape, storage=None):
        import pyopencl.array

        out = pyopencl.array.empty(self.array.queue, shape, dtype=storage or self.array.dtype)
        return out, out


def wrap(name, x, device):
    """The tensor `x` named `name` as a HostArray or, when `device` is true, a DeviceArray."""
    if device != is_pyopencl(x):
        raise TypeError(f"clattn: {name} is a {type(x).__name__}: PyOpenCL arrays cannot be mixed with host arrays")
    return DeviceArray(name, x) if device else HostArray(name, x)


def same_storage(tensors):
    """SPEC.md: one storage type per call, Q's. `tensors` maps names to tensors."""
    for name, t in tensors.items():
        if t.storage != tensors["q"].storage:
            raise TypeError(f"clattn: {name} is {t.storage} and q is {tensors['q'].storage}: every tensor of a call "
                            "has one dtype (float32, float16 or bfloat16)")

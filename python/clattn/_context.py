"""clattn.Context (one device and its plans, cached by problem so that a repeated shape never
compiles again) and clattn.devices()."""
import ctypes
import threading
from collections import namedtuple

from ._errors import check
from ._library import ContextDesc, DeviceInfo, lib

Device = namedtuple("Device", "spec name type")

_TYPES = ((1 << 2, "GPU"), (1 << 1, "CPU"), (1 << 3, "accelerator"))  # CL_DEVICE_TYPE_*


def devices():
    """Every OpenCL device, in the order "P:D" specs count them, then the reference path."""
    count = ctypes.c_int(0)
    found = []
    if lib.clattn_device_list(None, 0, ctypes.byref(count)) == 0 and count.value > 0:
        infos = (DeviceInfo * count.value)()
        if lib.clattn_device_list(infos, count.value, ctypes.byref(count)) == 0:
            for info in infos[: min(count.value, len(infos))]:
                kind = next((name for bit, name in _TYPES if info.type & bit), "other")
                found.append(Device(info.spec.decode(), info.name.decode(errors="replace"), kind))
    found.append(Device("reference", "double-precision reference path (plain C, every pattern)", "host"))
    return found


class _Plan:
    """A compiled plan and the lock that keeps it to one thread at a time, as clattn.h asks."""

    def __init__(self, handle):
        self.handle = handle
        self.lock = threading.Lock()


class Context:
    """One device: "cpu", "gpu", "P:D", "reference", or None ($CLATTN_DEVICE, else the first GPU,
    else the first OpenCL CPU device, else the reference path). `cache_dir` keeps compiled programs
    on disk (None: $CLATTN_CACHE_DIR, else none). May be shared between threads."""

    def __init__(self, device=None, *, cache_dir=None, _wrap=None):
        self._handle = ctypes.c_void_p()
        self._plans = {}
        self._lock = threading.Lock()
        desc = ContextDesc(device=(device or "").encode(), cache_dir=cache_dir.encode() if cache_dir else None)
        if _wrap is None:
            check(lib.clattn_context_create(ctypes.byref(desc), ctypes.byref(self._handle)))
        else:
            check(lib.clattn_context_wrap(*_wrap, ctypes.byref(desc), ctypes.byref(self._handle)))
        self.device = device

    @property
    def handle(self):
        if not self._handle:
            raise ValueError("clattn: this Context is closed")
        return self._handle

    @property
    def device_name(self):
        return lib.clattn_context_device_name(self.handle).decode(errors="replace")

    @property
    def is_reference(self):
        return bool(lib.clattn_context_is_reference(self.handle))

    def plan(self, key, problem):
        """The plan of `problem`, identified by `key`: created (compiled) on its first use only."""
        with self._lock:
            plan = self._plans.get(key)
            if plan is None:
                handle = ctypes.c_void_p()
                check(lib.clattn_plan_create(self.handle, ctypes.byref(problem), ctypes.byref(handle)), self.handle)
                plan = self._plans[key] = _Plan(handle)
            return plan

    @property
    def plan_count(self):
        """How many plans this context holds (each compiled once)."""
        return len(self._plans)

    def attention(self, q, k, v, **options):
        """clattn.attention(q, k, v, device=self, **options)."""
        from ._attention import attention

        return attention(q, k, v, device=self, **options)

    def close(self):
        """Frees the plans and the context; a closed context takes no more calls."""
        with self._lock:
            for plan in self._plans.values():
                lib.clattn_plan_free(plan.handle)
            self._plans.clear()
            if self._handle:
                lib.clattn_context_free(self._handle)
                self._handle = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None):
            self.close()

    def __repr__(self):
        state = self.device_name if self._handle else "closed"
        return f"clattn.Context({self.device!r}: {state}, {len(self._plans)} plans)"


# The contexts attention() makes for itself: one per device spec, and one per PyOpenCL queue
# (clattn retains the queue and its context, so their handles stay unique while listed here).
_shared = {}
_shared_lock = threading.Lock()


def shared_context(key, make):
    with _shared_lock:
        if key not in _shared:
            _shared[key] = make()
        return _shared[key]

"""clattn.attention: one call of SPEC.md's attention on NumPy arrays, PyTorch CPU tensors (a
blocking run on host memory) or PyOpenCL arrays (enqueued on their own queue, no host copy)."""
import ctypes

from . import _context, _problem, _tensors
from ._errors import check, fail
from ._library import Buffers, HostTensor, HostTensors, cl_handle, lib


def _gather(q, k, v, qkv_global, extra):
    """The input tensors by name, all host tensors or all PyOpenCL arrays."""
    device = _tensors.is_pyopencl(q)
    named = {"q": q, "k": k, "v": v}
    for names, group in ((("qg", "kg", "vg"), qkv_global), (("kx", "vx"), extra)):
        if group is not None:
            if len(group) != len(names):
                raise ValueError(f"clattn: {'qkv_global' if len(names) == 3 else 'extra'} takes {len(names)} tensors "
                                 f"({', '.join(names)}), got {len(group)}")
            named.update(zip(names, group))
    tensors = {name: _tensors.wrap(name, x, device) for name, x in named.items()}
    _tensors.same_storage(tensors)
    return tensors, device


def _seq_lens(seq_lens, batch):
    if seq_lens is None:
        return None
    values = _problem.c_ints("seq_lens", seq_lens)
    if len(values) != batch:
        raise fail("SHAPE_MISMATCH", f"seq_lens has {len(values)} entries, the batch is {batch}")
    return (ctypes.c_int * batch)(*values)


def _context_for(device, tensors, on_device):
    if on_device:
        if device is not None:
            raise ValueError("clattn: PyOpenCL arrays run on their own context and queue: leave device=None")
        queue = tensors["q"].array.queue
        for name, t in tensors.items():
            if t.array.context.int_ptr != queue.context.int_ptr:
                raise ValueError(f"clattn: {name} is on another OpenCL context than q")
        wrap = (queue.context.int_ptr, queue.device.int_ptr, queue.int_ptr)
        return _context.shared_context(("queue",) + wrap, lambda: _context.Context(_wrap=wrap))
    if isinstance(device, _context.Context):
        return device
    if device is not None and not isinstance(device, str):
        raise TypeError(f"clattn: device = {device!r}: expected None, a device spec or a clattn.Context")
    return _context.shared_context(device or "", lambda: _context.Context(device))


def _outputs(q, problem, return_lse):
    """The output [..., Dv] and LSE [...] shaped like q."""
    shape = tuple(q.shape[:-1])
    out = q.empty(shape + (problem.value_dim,))
    lse = q.empty(shape, "float32") if return_lse else (None, None)
    return out, lse


def _run_host(ctx, plan, tensors, out, lse, seq_lens):
    views = {name: t.array for name, t in tensors.items()}
    views["out"], views["lse"] = out, lse
    fields = {name: HostTensor(a.ctypes.data, a.nbytes) for name, a in views.items() if a is not None}
    host = HostTensors(**fields, seq_lens=seq_lens)
    with plan.lock:
        check(lib.clattn_plan_run_host(plan.handle, ctypes.byref(host)), ctx.handle)


def _enqueue(ctx, plan, tensors, out, lse, seq_lens):
    import pyopencl

    fields = {name: t.buffer for name, t in tensors.items()}
    fields["out"] = out.base_data.int_ptr
    if lse is not None:
        fields["lse"] = lse.base_data.int_ptr
    buffers = Buffers(**fields, seq_lens=seq_lens)
    waits = [e.int_ptr for t in tensors.values() for e in t.array.events]
    wait_list = (cl_handle * max(len(waits), 1))(*waits)
    event = cl_handle()
    queue = tensors["q"].array.queue
    with plan.lock:
        status = lib.clattn_plan_enqueue(plan.handle, queue.int_ptr, ctypes.byref(buffers), len(waits),
                                         wait_list if waits else None, ctypes.byref(event))
    check(status, ctx.handle)
    done = pyopencl.Event.from_int_ptr(event.value, retain=False)
    for array in (out, lse):
        if array is not None:
            array.add_event(done)


def attention(q, k, v, *, causal=False, window=None, dilation=1, global_tokens=None, qkv_global=None,
              summary_block=None, summary_tail="merge", extra=None, seq_lens=None, scale=None, grid=None,
              grid_pattern=None, return_lse=False, device=None):
    """softmax(scale * q kᵀ) v over the keys each query sees (SPEC.md), for NumPy arrays, PyTorch
    CPU tensors or PyOpenCL arrays of shape [B,H,N,D], [H,N,D] or [N,D] (q, k, v of one rank), all
    float32, all float16 or all bfloat16 (NumPy's from ml_dtypes); the arithmetic is float32.

    causal: remove keys after each query's position p(i) = i + Nk - Nq. window: W or (L, R), keys
    p-L..p+R, with `dilation`. global_tokens: positions that see and are seen by every row;
    qkv_global=(qg, kg, vg): their own projections. summary_block: block means of k and v as extra
    keys, summary_tail "merge" (left-over keys join the last block) or "own" (a block of their
    own). extra=(kx, vx): keys every row sees. seq_lens: valid keys per batch entry. scale: None
    for 1/sqrt(D). grid=(H, W) with grid_pattern "axial-row", "axial-column", "criss-cross",
    "neighborhood=KH,KW[,D]" or "window=M[,S]" (or a tuple such as ("window", 4, 2)).
    device: a spec ("cpu", "gpu", "P:D", "reference"), a clattn.Context, or None for the default
    device; PyOpenCL arrays run on their own queue and take no device.

    Returns the output in the kind and dtype of q (for PyOpenCL arrays, enqueued and not waited
    for), and with return_lse=True also the float32 log-sum-exp of each row: (out, lse). Raises
    clattn.Error for what the library rejects, TypeError for an unsupported array or dtype, or for
    inputs of more than one dtype."""
    tensors, on_device = _gather(q, k, v, qkv_global, extra)
    problem, globals_array = _problem.make_problem(
        {name: t.shape for name, t in tensors.items()}, causal=causal, window=window, dilation=dilation,
        global_tokens=global_tokens, summary_block=summary_block, summary_tail=summary_tail, scale=scale, grid=grid,
        grid_pattern=grid_pattern)
    problem.dtype = _tensors.STORAGE[tensors["q"].storage]
    lens = _seq_lens(seq_lens, problem.batch)
    ctx = _context_for(device, tensors, on_device)
    plan = ctx.plan(_problem.plan_key(problem, globals_array), problem)
    (out, out_view), (lse, lse_view) = _outputs(tensors["q"], problem, return_lse)
    (_enqueue if on_device else _run_host)(ctx, plan, tensors, out_view, lse_view, lens)
    return (out, lse) if return_lse else out

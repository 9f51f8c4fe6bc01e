"""clattn.attention's keyword arguments and tensor shapes as a clattn_problem, the way the clattn
tool maps its flags and .npy shapes (tools/run_args.c, tools/clattn.c): ranks 4 [B,H,N,D],
3 [H,N,D] or 2 [N,D], window W meaning (W, W), the tool's grid pattern names."""
import ctypes
import math
import numbers

from ._errors import fail
from ._library import Problem

# Grid pattern names (the tool's --grid-pattern), their clattn_grid_pattern values, and the
# problem fields their numbers fill, with the defaults of the ones that may be left out.
GRID_PATTERNS = {
    "axial-row": (1, (), ()),
    "axial-column": (2, (), ()),
    "criss-cross": (3, (), ()),
    "neighborhood": (4, ("grid_kernel_h", "grid_kernel_w", "grid_dilation"), (1,)),
    "window": (5, ("grid_window_size", "grid_shift"), (0,)),
}
INT_MAX = 2**31 - 1
# summary_tail's names and the values of clattn_problem.summary_tail (0, the default, is SPEC.md's
# default, "merge": the left-over keys join the last block; "own": they keep a block of their own).
SUMMARY_TAILS = {"merge": 0, "own": 1}


def shape4(shape):
    """[B, H, N, D] of a rank 2, 3 or 4 shape (missing leading dimensions are 1)."""
    return (1,) * (4 - len(shape)) + tuple(shape)


def _show(shape):
    return "[" + ",".join(str(n) for n in shape) + "]"


def c_ints(name, value, count=None):
    """`value` as a tuple of C ints, `count` of them when given (an int alone stands for one)."""
    values = (value,) if isinstance(value, numbers.Integral) else tuple(value)
    if (count is not None and len(values) not in count) or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and -INT_MAX - 1 <= v <= INT_MAX for v in values
    ):
        if count == (1,):
            wanted = "an integer that fits"
        else:
            wanted = ("" if count is None else f"{' or '.join(map(str, count))} ") + "integers that fit"
        raise ValueError(f"clattn: {name} = {value!r}: expected {wanted} a C int")
    return tuple(int(v) for v in values)


def _grid(p, grid, pattern):
    """The grid fields from grid=(H, W) and the tool's pattern text ("neighborhood=3,3,2") or a
    tuple ("neighborhood", 3, 3, 2)."""
    if grid is None or pattern is None:
        if grid is not None or pattern is not None:
            raise ValueError("clattn: grid and grid_pattern go together")
        return
    p.grid_h, p.grid_w = c_ints("grid", grid, (2,))
    if isinstance(pattern, str):
        name, _, text = pattern.partition("=")
        try:
            args = tuple(int(n) for n in text.split(",")) if text else ()
        except ValueError:
            raise ValueError(f"clattn: grid_pattern {pattern!r}: expected comma-separated integers after '='") from None
    else:
        name, args = pattern[0], tuple(pattern[1:])
    if name not in GRID_PATTERNS:
        raise ValueError(f"clattn: grid_pattern {pattern!r}: expected one of {', '.join(GRID_PATTERNS)}")
    value, fields, defaults = GRID_PATTERNS[name]
    least = len(fields) - len(defaults)
    args = c_ints("grid_pattern", args, range(least, len(fields) + 1))
    p.grid_pattern = value
    for field, n in zip(fields, args + defaults[len(args) - least :]):
        setattr(p, field, n)


def _derive_shape(p, shapes):
    """The problem's sizes from the shapes of q, k, v (and the optional tensors checked against
    them): SHAPE_MISMATCH as the tool gives it."""
    ranks = [len(shapes[n]) for n in ("q", "k", "v")]
    if len(set(ranks)) != 1 or not 2 <= ranks[0] <= 4:
        raise fail("SHAPE_MISMATCH", f"q, k and v have ranks {ranks}: they must be equal, and 2, 3 or 4")
    q, k, v = (shape4(shapes[n]) for n in ("q", "k", "v"))
    if q[0] != k[0] or q[3] != k[3] or k[:3] != v[:3]:
        raise fail(
            "SHAPE_MISMATCH",
            f"q {_show(q)}, k {_show(k)}, v {_show(v)}: q and k must agree in batch and head dim, "
            "k and v in batch, heads and keys",
        )
    if max(q + k + v) > INT_MAX:
        raise fail("SIZE_OVERFLOW", f"q {_show(q)}, k {_show(k)}, v {_show(v)}: a dimension exceeds 2^31 - 1")
    p.batch, p.heads, p.q_len, p.head_dim = q
    p.kv_heads, p.kv_len, p.value_dim = k[1], k[2], v[3]
    for name, like in (("qg", q), ("kg", k), ("vg", v)):
        if name in shapes and shape4(shapes[name]) != like:
            raise fail("SHAPE_MISMATCH", f"{name} {_show(shape4(shapes[name]))} differs from {name[0]} {_show(like)}")
    if "kx" in shapes:
        x, y = shape4(shapes["kx"]), shape4(shapes["vx"])
        if x[:2] != k[:2] or x[3] != k[3] or y[:2] != v[:2] or y[2] != x[2] or y[3] != v[3]:
            raise fail("SHAPE_MISMATCH", f"kx {_show(x)}, vx {_show(y)} disagree with k {_show(k)}, v {_show(v)}")
        p.extra_len = x[2]


def make_problem(shapes, *, causal, window, dilation, global_tokens, summary_block, summary_tail, scale, grid,
                 grid_pattern):
    """(the clattn_problem, the global token array it points to, which the caller keeps alive)."""
    p = Problem()
    _derive_shape(p, shapes)
    p.global_qkv = int("qg" in shapes)
    p.causal = int(bool(causal))
    if window is not None:
        left, *right = c_ints("window", window, (1, 2))
        p.window, p.window_left, p.window_right = 1, left, right[0] if right else left
    (p.dilation,) = c_ints("dilation", dilation, (1,))
    if p.dilation == 0:  # 0 would read as the default, 1
        raise fail("INVALID_DILATION", "dilation = 0: must be at least 1")
    if summary_tail not in SUMMARY_TAILS:
        raise ValueError(f"clattn: summary_tail = {summary_tail!r}: expected 'merge' or 'own'")
    if summary_block is not None:
        (p.summary_block,) = c_ints("summary_block", summary_block, (1,))
        if p.summary_block == 0:
            raise fail("INVALID_BLOCK", "summary_block = 0: must be at least 1")
        p.summary_tail = SUMMARY_TAILS[summary_tail]
    if scale is not None:
        p.scale = float(scale)
        if p.scale == 0.0 or math.isnan(p.scale):
            raise ValueError(f"clattn: scale = {scale!r}: must be a nonzero number (None: 1/sqrt(D))")
    globals_array = None
    if global_tokens is not None:
        tokens = c_ints("global_tokens", global_tokens)
        globals_array = (ctypes.c_int * max(len(tokens), 1))(*tokens)
        p.global_idx = ctypes.cast(globals_array, ctypes.POINTER(ctypes.c_int))
        p.num_global = len(tokens)
    _grid(p, grid, grid_pattern)
    return p, globals_array


def plan_key(p, globals_array):
    """What identifies a plan: every field's value, the global tokens' values in place of their
    address."""
    fields = tuple(getattr(p, name) for name, _ in Problem._fields_ if name != "global_idx")
    return fields + (tuple(globals_array[: p.num_global]) if globals_array is not None else (),)

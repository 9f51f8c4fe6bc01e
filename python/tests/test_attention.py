"""clattn.attention against the NumPy float64 reference (reference.py), every pattern, on every
device: odd sizes, grouped-query heads, padding, decode, Dv != D, the LSE, ranks 2 to 4."""
import numpy as np
import pytest

import clattn
import reference
from conftest import has_device, normal

# name: (B, H, Hkv, Nq, Nk, D, Dv, options). Options that name tensors (qkv_global, extra) get
# them made by make_inputs.
CASES = {
    "dense": (1, 2, 2, 33, 33, 16, 16, {}),
    "causal": (2, 3, 3, 41, 41, 24, 24, {"causal": True}),
    "scale": (1, 1, 1, 19, 19, 8, 8, {"scale": 0.3}),
    "window-dilated-causal": (1, 2, 1, 57, 57, 16, 16, {"window": (7, 3), "dilation": 2, "causal": True}),
    "window-symmetric": (1, 2, 2, 45, 45, 16, 16, {"window": 5}),
    "window-globals": (2, 2, 2, 61, 61, 16, 16, {"window": (4, 4), "global_tokens": [40, 0, 17]}),
    "global-projections": (1, 2, 2, 37, 37, 16, 16,
                           {"window": (3, 0), "causal": True, "global_tokens": [5, 30], "qkv_global": True}),
    "summary-own": (2, 2, 2, 43, 43, 16, 16, {"summary_block": 5, "summary_tail": "own", "causal": True}),
    "extra": (1, 4, 2, 29, 29, 16, 20, {"extra": 3, "window": (2, 2)}),
    "padding": (3, 2, 2, 35, 35, 16, 16, {"seq_lens": [35, 20, 0], "causal": True}),
    "gqa-dv": (1, 6, 2, 31, 31, 32, 12, {}),
    "decode": (2, 8, 2, 1, 77, 64, 64, {"causal": True, "seq_lens": [77, 50]}),
    "decode-window": (1, 4, 4, 3, 70, 16, 16, {"window": (9, 0), "global_tokens": [2]}),
    "everything": (2, 4, 2, 53, 53, 16, 24,
                   {"causal": True, "window": (6, 1), "global_tokens": [1, 33], "summary_block": 7,
                    "summary_tail": "own", "extra": 2, "seq_lens": [53, 40]}),
}


def make_inputs(rng, b, h, hkv, nq, nk, d, dv, options):
    q, k, v = normal(rng, b, h, nq, d), normal(rng, b, hkv, nk, d), normal(rng, b, hkv, nk, dv)
    options = dict(options)
    if options.get("qkv_global"):
        options["qkv_global"] = (normal(rng, b, h, nq, d), normal(rng, b, hkv, nk, d), normal(rng, b, hkv, nk, dv))
    if "extra" in options:
        nx = options["extra"]
        options["extra"] = (normal(rng, b, hkv, nx, d), normal(rng, b, hkv, nx, dv))
    return q, k, v, options


def check(out, lse, expected, expected_lse):
    assert out.dtype == np.float32 and lse.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=2e-5)
    finite = np.isfinite(expected_lse)
    assert np.array_equal(np.isfinite(lse), finite)
    np.testing.assert_allclose(lse[finite], expected_lse[finite], rtol=1e-5, atol=2e-5)
    assert np.all(lse[~finite] == -np.inf)


@pytest.mark.parametrize("case", CASES)
def test_pattern(context, rng, case):
    *sizes, options = CASES[case]
    q, k, v, options = make_inputs(rng, *sizes, options)
    out, lse = context.attention(q, k, v, return_lse=True, **options)
    assert out.shape == q.shape[:3] + (v.shape[3],) and lse.shape == q.shape[:3]
    check(out, lse, *reference.attention(q, k, v, **options))


@pytest.mark.parametrize("rank", [2, 3])
def test_lower_ranks(context, rng, rank):
    """[H,N,D] and [N,D] inputs give outputs of the same rank, equal to the rank-4 result."""
    q, k, v = normal(rng, 1, 1, 23, 16), normal(rng, 1, 1, 23, 16), normal(rng, 1, 1, 23, 8)
    strip = (0,) * (4 - rank)
    out, lse = context.attention(q[strip], k[strip], v[strip], causal=True, return_lse=True)
    assert out.shape == (1,) * (rank - 2) + (23, 8) and lse.shape == out.shape[:-1]
    expected, expected_lse = reference.attention(q, k, v, causal=True)
    check(out, lse, expected[strip], expected_lse[strip])


def test_summary_merge(context, rng):
    """summary_tail="merge", the default (SPEC.md): the left-over keys join the last block."""
    q, k, v, _ = make_inputs(rng, 1, 2, 2, 23, 23, 16, 16, {})
    out, lse = context.attention(q, k, v, summary_block=5, causal=True, return_lse=True)
    check(out, lse, *reference.attention(q, k, v, summary_block=5, summary_tail="merge", causal=True))


@pytest.mark.parametrize("pattern", ["axial-row", "axial-column", "criss-cross", "window=3,1", ("window", 2)])
def test_grid(rng, pattern):
    """2-D patterns: on the reference path (a device without them falls back, with a warning)."""
    q, k, v = normal(rng, 1, 2, 35, 8), normal(rng, 1, 2, 35, 8), normal(rng, 1, 2, 35, 8)
    out, lse = clattn.attention(q, k, v, grid=(5, 7), grid_pattern=pattern, device="reference", return_lse=True)
    text = pattern if isinstance(pattern, str) else "=".join([pattern[0], ",".join(map(str, pattern[1:]))])
    check(out, lse, *reference.attention(q, k, v, grid=(5, 7), grid_pattern=text))


def test_grid_on_device(rng):
    """2-D patterns run on the device kernels too (no fallback to the reference path)."""
    if not has_device():
        pytest.skip("no OpenCL device (clattn.devices())")
    q = normal(rng, 12, 8)
    out = clattn.attention(q, q, q, grid=(3, 4), grid_pattern="criss-cross")
    np.testing.assert_allclose(out, reference.attention(q[None, None], q[None, None], q[None, None], grid=(3, 4),
                                                        grid_pattern="criss-cross")[0][0, 0], rtol=1e-4, atol=2e-5)


def test_non_contiguous_input(context, rng):
    """A strided array is read as its values (copied to contiguous memory first)."""
    base = normal(rng, 1, 2, 16, 29)
    q = base.transpose(0, 1, 3, 2)  # [1, 2, 29, 16], not contiguous
    out = context.attention(q, q, q)
    np.testing.assert_allclose(out, reference.attention(q, q, q)[0], rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("order", [">", "<"])
def test_byte_order(context, rng, order):
    """An array stored in either byte order is read as its values; the output is in the machine's."""
    q = normal(rng, 1, 2, 29, 16)
    swapped = q.astype(q.dtype.newbyteorder(order))
    out = context.attention(swapped, swapped, swapped)
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_allclose(out, reference.attention(q, q, q)[0], rtol=1e-4, atol=2e-5)


def test_plan_cache(rng):
    """A repeated shape reuses its plan (no second compile); a new shape or pattern makes one."""
    with clattn.Context() as ctx:
        q = normal(rng, 2, 19, 16)
        first = ctx.attention(q, q, q, window=3)
        assert ctx.plan_count == 1
        again = ctx.attention(normal(rng, 2, 19, 16), q, q, window=3)
        assert ctx.plan_count == 1 and not np.array_equal(first, again)
        ctx.attention(q, q, q, window=4)
        ctx.attention(q[:, :18], q[:, :18], q[:, :18], window=3)
        assert ctx.plan_count == 3
        ctx.attention(q, q, q, global_tokens=[1])
        ctx.attention(q, q, q, global_tokens=[2])
        assert ctx.plan_count == 5  # the global positions are part of the plan


def test_version_and_devices():
    """The package's version (pyproject.toml reads it from clattn.h) is the library's."""
    from importlib import metadata

    assert metadata.version("clattn") == clattn.__version__ and clattn.__version__.count(".") == 2
    listed = clattn.devices()
    assert listed[-1].spec == "reference" and all(d.type in ("GPU", "CPU", "accelerator", "other", "host")
                                                  for d in listed)

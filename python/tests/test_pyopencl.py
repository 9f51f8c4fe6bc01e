"""PyOpenCL arrays stay on the device: the call runs on their context and queue and returns
PyOpenCL arrays, equal to the host result, in float32, float16 or bfloat16 storage."""
import numpy as np
import pytest

import clattn
import reference
from conftest import has_device, normal, numpy_dtype

cl = pytest.importorskip("pyopencl", reason="PyOpenCL is not installed")
import pyopencl.array as cla  # noqa: E402


@pytest.fixture(scope="module")
def queue():
    if not has_device():
        pytest.skip("no OpenCL device (clattn.devices())")
    platform = cl.get_platforms()[0]  # clattn's "0:0": the same ICD loader order
    context = cl.Context([platform.get_devices()[0]])
    return cl.CommandQueue(context)


def test_device_arrays(queue, rng):
    q, k, v = normal(rng, 2, 4, 31, 16), normal(rng, 2, 2, 31, 16), normal(rng, 2, 2, 31, 8)
    kx, vx = normal(rng, 2, 2, 3, 16), normal(rng, 2, 2, 3, 8)
    options = {"causal": True, "window": (6, 0), "global_tokens": [4], "seq_lens": [31, 17]}
    expected, expected_lse = clattn.attention(q, k, v, extra=(kx, vx), return_lse=True, device="reference", **options)
    d = [cla.to_device(queue, x) for x in (q, k, v, kx, vx)]
    out, lse = clattn.attention(d[0], d[1], d[2], extra=(d[3], d[4]), return_lse=True, **options)
    assert isinstance(out, cla.Array) and isinstance(lse, cla.Array)
    assert out.queue is queue and out.shape == expected.shape and lse.dtype == np.float32
    np.testing.assert_allclose(out.get(), expected, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(lse.get(), expected_lse, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("storage", ["float16", "bfloat16"])
def test_device_storage(queue, rng, storage):
    """16-bit arrays stay on the device and come back in their dtype, within SPEC.md's tolerance
    of the float64 reference of the same values."""
    dtype = numpy_dtype(storage)
    q, k, v = (normal(rng, *shape).astype(dtype) for shape in ((2, 4, 31, 16), (2, 2, 31, 16), (2, 2, 31, 8)))
    options = {"causal": True, "window": (6, 0), "global_tokens": [4]}
    out, lse = clattn.attention(*(cla.to_device(queue, x) for x in (q, k, v)), return_lse=True, **options)
    assert isinstance(out, cla.Array) and out.queue is queue and out.dtype == dtype and lse.dtype == np.float32
    expected, expected_lse = reference.attention(q, k, v, **options)
    reference.assert_stored(out.get(), expected, storage)
    np.testing.assert_allclose(lse.get(), expected_lse, rtol=1e-5, atol=2e-5)


def test_offset_array(queue, rng):
    """An array that starts inside its buffer (a slice) is read from where it starts."""
    whole = normal(rng, 3, 19, 8)
    d = cla.to_device(queue, whole)[1:]
    assert d.offset > 0
    out = clattn.attention(d, d, d, causal=True)
    np.testing.assert_allclose(out.get(), clattn.attention(whole[1:], whole[1:], whole[1:], causal=True,
                                                           device="reference"), rtol=1e-4, atol=2e-5)


def test_mixing_is_refused(queue, rng):
    q = normal(rng, 5, 8)
    d = cla.to_device(queue, q)
    with pytest.raises(TypeError, match="mixed"):
        clattn.attention(d, q, d)
    with pytest.raises(ValueError, match="own context"):
        clattn.attention(d, d, d, device="reference")
    with pytest.raises(TypeError, match="float32"):
        clattn.attention(d.astype(np.float64), d, d)
    with pytest.raises(TypeError, match="byte order"):
        clattn.attention(cla.to_device(queue, q.astype(">f4")), d, d)
    half = cla.to_device(queue, q.astype(np.float16))
    with pytest.raises(TypeError, match="k is float32 and q is float16"):
        clattn.attention(half, d, half)

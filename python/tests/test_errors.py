"""Bad input: clattn.Error with the library's status name and a message naming the argument and
its value; TypeError for arrays and dtypes the package does not take; ValueError for arguments
that mean nothing."""
import numpy as np
import pytest

import clattn
from conftest import normal


@pytest.fixture
def qkv(rng):
    return normal(rng, 2, 4, 13, 8), normal(rng, 2, 2, 13, 8), normal(rng, 2, 2, 13, 8)


@pytest.mark.parametrize(
    "options, status, words",
    [
        ({"window": (-1, 2)}, "INVALID_WINDOW", "-1"),
        ({"window": 2, "dilation": -3}, "INVALID_DILATION", "-3"),
        ({"window": 2, "dilation": 0}, "INVALID_DILATION", "dilation = 0"),
        ({"dilation": 2}, "INVALID_PATTERN", "dilation"),
        ({"global_tokens": [3, 13]}, "INVALID_GLOBAL_INDEX", "13"),
        ({"global_tokens": [4, 4]}, "INVALID_GLOBAL_INDEX", "4"),
        ({"summary_block": 0, "summary_tail": "own"}, "INVALID_BLOCK", "summary_block"),
        ({"summary_block": -2, "summary_tail": "own"}, "INVALID_BLOCK", "-2"),
        ({"seq_lens": [13, 14]}, "INVALID_SEQ_LEN", "14"),
        ({"seq_lens": [13]}, "SHAPE_MISMATCH", "seq_lens"),
        ({"grid": (3, 5), "grid_pattern": "axial-row"}, "INVALID_GRID", "13"),
        ({"grid": (1, 13), "grid_pattern": "window=4,4"}, "INVALID_SHIFT", "4"),
        ({"grid": (1, 13), "grid_pattern": "neighborhood=0,3"}, "INVALID_KERNEL_SIZE", "0"),
        ({"grid": (1, 13), "grid_pattern": "axial-row", "window": 2}, "INVALID_PATTERN", "grid"),
        ({"device": "9:9"}, "NO_DEVICE", "9:9"),
        ({"device": "fast"}, "INVALID_DEVICE_SPEC", "fast"),
    ],
)
def test_library_rejects(qkv, options, status, words):
    options.setdefault("device", "reference")
    with pytest.raises(clattn.Error) as caught:
        clattn.attention(*qkv, **options)
    error = caught.value
    assert error.name == "CLATTN_STATUS_" + status, str(error)
    assert words in error.message and str(error).startswith(error.name)
    assert error.status > 1000


@pytest.mark.parametrize(
    "shapes, words",
    [
        (((2, 4, 13, 8), (2, 3, 13, 8), (2, 3, 13, 8)), "heads"),  # H = 4 is not a multiple of Hkv = 3
        (((2, 4, 13, 8), (2, 2, 13, 9), (2, 2, 13, 8)), "head dim"),
        (((2, 4, 13, 8), (2, 2, 13, 8), (2, 2, 12, 8)), "keys"),
        (((1, 4, 13, 8), (2, 2, 13, 8), (2, 2, 13, 8)), "batch"),
        (((4, 13, 8), (1, 4, 13, 8), (1, 4, 13, 8)), "ranks"),
        (((13,), (13,), (13,)), "ranks"),
    ],
)
def test_shapes(rng, shapes, words):
    q, k, v = (normal(rng, *s) for s in shapes)
    with pytest.raises(clattn.Error) as caught:
        clattn.attention(q, k, v, device="reference")
    assert caught.value.name in ("CLATTN_STATUS_SHAPE_MISMATCH", "CLATTN_STATUS_INVALID_HEADS")
    assert words in caught.value.message


def test_head_dim_too_large(context, rng):
    q = normal(rng, 5, 300)
    if context.is_reference:
        pytest.skip("the reference path has no head-dimension limit")
    with pytest.raises(clattn.Error, match="UNSUPPORTED_HEAD_DIM.*300"):
        context.attention(q, q, q)


def test_optional_tensor_shapes(qkv, rng):
    q, k, v = qkv
    with pytest.raises(clattn.Error, match="SHAPE_MISMATCH.*kx"):
        clattn.attention(q, k, v, extra=(normal(rng, 2, 2, 3, 8), normal(rng, 2, 2, 4, 8)), device="reference")
    with pytest.raises(clattn.Error, match="SHAPE_MISMATCH.*qg"):
        clattn.attention(q, k, v, global_tokens=[1], qkv_global=(q[:1], k, v), device="reference")
    with pytest.raises(clattn.Error, match="INVALID_PATTERN"):
        clattn.attention(q, k, v, qkv_global=(q, k, v), device="reference")  # no global tokens
    with pytest.raises(ValueError, match="extra takes 2"):
        clattn.attention(q, k, v, extra=(k,), device="reference")


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int16])
def test_dtypes(qkv, dtype):
    q, k, v = qkv
    with pytest.raises(TypeError, match="float32"):
        clattn.attention(q.astype(dtype), k, v)
    with pytest.raises(TypeError, match="v is"):
        clattn.attention(q, k, v.astype(dtype))


def test_not_arrays(qkv):
    q, k, v = qkv
    with pytest.raises(TypeError, match="list"):
        clattn.attention(q.tolist(), k, v)
    with pytest.raises(TypeError, match="device"):
        clattn.attention(q, k, v, device=3)


@pytest.mark.parametrize(
    "options, words",
    [
        ({"summary_tail": "left"}, "summary_tail"),
        ({"scale": 0.0}, "scale"),
        ({"window": (1, 2, 3)}, "window"),
        ({"window": 2**31}, "window"),
        ({"grid": (1, 13)}, "grid_pattern"),
        ({"grid": (1, 13), "grid_pattern": "spiral"}, "spiral"),
        ({"grid": (1, 13), "grid_pattern": "window=a"}, "integers"),
        ({"global_tokens": [1.5]}, "global_tokens"),
    ],
)
def test_meaningless_arguments(qkv, options, words):
    with pytest.raises(ValueError, match=words):
        clattn.attention(*qkv, device="reference", **options)


def test_closed_context(qkv):
    ctx = clattn.Context("reference")
    ctx.close()
    with pytest.raises(ValueError, match="closed"):
        ctx.attention(*qkv)

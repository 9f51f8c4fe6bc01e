"""float16 and bfloat16 storage (SPEC.md, "Element types"): NumPy arrays (bfloat16 from
ml_dtypes) and PyTorch CPU tensors come back in their own kind and dtype, within half an ulp of
that dtype plus the float32 tolerance of the float64 reference of the same rounded inputs, with a
float32 LSE; every tensor of a call has one dtype."""
import numpy as np
import pytest

import clattn
import reference
from conftest import normal, numpy_dtype

STORAGES = ["float16", "bfloat16"]
# name: (B, H, Hkv, Nq, Nk, D, Dv, options); qkv_global and extra get their tensors made below.
CASES = {
    "window-globals-causal": (2, 2, 2, 61, 61, 16, 16, {"window": (4, 4), "global_tokens": [40, 0, 17],
                                                        "causal": True}),
    "projections-extra": (1, 4, 2, 37, 37, 16, 24, {"window": (3, 3), "global_tokens": [5, 30], "qkv_global": True,
                                                    "extra": 3}),
    "summary-padding": (2, 2, 1, 43, 43, 32, 32, {"summary_block": 5, "causal": True, "seq_lens": [43, 20]}),
    "decode": (2, 4, 2, 1, 77, 64, 64, {"causal": True, "seq_lens": [77, 50]}),
}


def stored_inputs(rng, dtype, b, h, hkv, nq, nk, d, dv, options):
    """Random q, k, v and the options' tensors, rounded to dtype."""
    def make(*shape):
        return normal(rng, *shape).astype(dtype)

    options = dict(options)
    if options.get("qkv_global"):
        options["qkv_global"] = (make(b, h, nq, d), make(b, hkv, nk, d), make(b, hkv, nk, dv))
    if "extra" in options:
        options["extra"] = (make(b, hkv, options["extra"], d), make(b, hkv, options["extra"], dv))
    return make(b, h, nq, d), make(b, hkv, nk, d), make(b, hkv, nk, dv), options


def assert_lse(lse, expected_lse):
    finite = np.isfinite(expected_lse)
    assert lse.dtype == np.float32 and np.array_equal(np.isfinite(lse), finite)
    np.testing.assert_allclose(lse[finite], expected_lse[finite], rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("case", CASES)
def test_numpy(context, rng, storage, case):
    dtype = numpy_dtype(storage)
    q, k, v, options = stored_inputs(rng, dtype, *CASES[case])
    out, lse = context.attention(q, k, v, return_lse=True, **options)
    assert type(out) is np.ndarray and out.dtype == dtype and out.shape == q.shape[:3] + v.shape[3:]
    expected, expected_lse = reference.attention(q, k, v, **options)  # widened exactly to float64
    reference.assert_stored(out, expected, storage)
    assert_lse(lse, expected_lse)


@pytest.mark.parametrize("storage", STORAGES)
def test_torch(context, storage):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    gen = torch.Generator().manual_seed(11)
    dtype = getattr(torch, storage)

    def make(*shape):
        return torch.randn(*shape, generator=gen).to(dtype)

    q = make(2, 4, 16, 37).transpose(2, 3)  # [2, 4, 37, 16], not contiguous
    k, v, kx, vx = make(2, 2, 37, 16), make(2, 2, 37, 24), make(2, 2, 3, 16), make(2, 2, 3, 24)
    options = {"window": (5, 2), "global_tokens": [0, 20], "causal": True}
    out, lse = context.attention(q, k, v, extra=(kx, vx), return_lse=True, **options)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.shape == (2, 4, 37, 24)
    assert isinstance(lse, torch.Tensor) and lse.dtype == torch.float32 and lse.shape == (2, 4, 37)

    def wide(x):
        return x.double().numpy()

    expected, expected_lse = reference.attention(wide(q), wide(k), wide(v), extra=(wide(kx), wide(vx)), **options)
    reference.assert_stored(wide(out), expected, storage)
    assert_lse(lse.numpy(), expected_lse)


def test_torch_float16_matches_sdpa(context):
    """The issue's case: a Longformer window of 256 each side and a global first token on float16
    tensors, against PyTorch's masked scaled_dot_product_attention in float32 of the same values."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    gen = torch.Generator().manual_seed(5)
    n, heads, d = 700, 2, 32
    q, k, v = (torch.randn(heads, n, d, generator=gen).half() for _ in range(3))
    out = context.attention(q, k, v, window=(256, 256), global_tokens=[0])
    i = torch.arange(n)
    mask = ((i[:, None] - i[None, :]).abs() <= 256) | (i[:, None] == 0) | (i[None, :] == 0)
    expected = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask)
    assert out.dtype == torch.float16 and out.shape == (heads, n, d)
    reference.assert_stored(out.double().numpy(), expected.double().numpy(), "float16")


def test_one_dtype_per_call(rng):
    q = normal(rng, 9, 8)
    half, bf16 = q.astype(np.float16), q.astype(numpy_dtype("bfloat16"))
    with pytest.raises(TypeError, match="k is float32 and q is float16"):
        clattn.attention(half, q, half, device="reference")
    with pytest.raises(TypeError, match="v is bfloat16 and q is float16"):
        clattn.attention(half, half, bf16, device="reference")
    with pytest.raises(TypeError, match="kx is float16 and q is bfloat16"):
        clattn.attention(bf16, bf16, bf16, extra=(half, half), device="reference")
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    t = torch.zeros(9, 8)
    with pytest.raises(TypeError, match="k is float16 and q is bfloat16"):
        clattn.attention(t.bfloat16(), t.half(), t.bfloat16(), device="reference")

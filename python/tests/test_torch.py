"""PyTorch CPU tensors in, PyTorch tensors out, equal to the NumPy result of the same values."""
import numpy as np
import pytest

import clattn
import reference

torch = pytest.importorskip("torch", reason="PyTorch is not installed")


def test_tensors_in_tensors_out(context):
    gen = torch.Generator().manual_seed(7)
    q, k, v = (torch.randn(shape, generator=gen) for shape in ((1, 4, 29, 16), (1, 2, 29, 16), (1, 2, 29, 16)))
    out, lse = context.attention(q, k, v, window=(4, 4), global_tokens=[0], causal=True, return_lse=True)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == q.shape
    assert isinstance(lse, torch.Tensor) and lse.dtype == torch.float32 and lse.shape == q.shape[:3]
    expected, expected_lse = reference.attention(q.numpy(), k.numpy(), v.numpy(), window=(4, 4), global_tokens=[0],
                                                 causal=True)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(lse.numpy(), expected_lse, rtol=1e-5, atol=2e-5)


def test_matches_scaled_dot_product_attention(context):
    """A masked PyTorch SDPA of the same window and global token, on [H, N, D] tensors with a
    grad-requiring, non-contiguous query."""
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(2, 16, 37, generator=gen).transpose(1, 2).requires_grad_()  # [2, 37, 16], strided
    k, v = torch.randn(2, 37, 16, generator=gen), torch.randn(2, 37, 16, generator=gen)
    out = context.attention(q, k, v, window=(5, 5), global_tokens=[0])
    i = torch.arange(37)
    mask = ((i[:, None] - i[None, :]).abs() <= 5) | (i[:, None] == 0) | (i[None, :] == 0)
    expected = torch.nn.functional.scaled_dot_product_attention(q.detach(), k, v, attn_mask=mask)
    assert out.shape == (2, 37, 16) and not out.requires_grad
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=2e-5)


def test_other_dtypes_are_refused():
    q = torch.zeros(4, 8, dtype=torch.float64)
    with pytest.raises(TypeError, match="q is float64; tensors must be float32, float16 or bfloat16"):
        clattn.attention(q, q, q)
    i = torch.zeros(4, 8, dtype=torch.int16)  # bfloat16's bytes as NumPy sees them, but not bfloat16
    with pytest.raises(TypeError, match="q is int16"):
        clattn.attention(i, i, i)

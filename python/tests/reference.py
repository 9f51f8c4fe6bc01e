"""SPEC.md's attention in NumPy float64, written from the spec alone (no clattn code): a mask of
S(i) per batch entry, summary tokens and extra keys as more columns of the same softmax. The
tests compare clattn's float32 results with it."""
import numpy as np


def _summaries(k, v, valid, block, tail):
    """Summary keys and values [Hkv, nb, .] of one batch entry, and each block's last key."""
    if tail == "own":
        starts = list(range(0, valid, block))
        ends = [min(s + block, valid) for s in starts]
    else:  # "merge": the valid % block left-over keys join the last whole block
        nb = valid // block
        starts = [c * block for c in range(nb)]
        ends = [(c + 1) * block for c in range(nb)]
        if nb:
            ends[-1] = valid
    kbar = np.stack([k[:, s:e].mean(axis=1) for s, e in zip(starts, ends)], axis=1) if starts else k[:, :0]
    vbar = np.stack([v[:, s:e].mean(axis=1) for s, e in zip(starts, ends)], axis=1) if starts else v[:, :0]
    return kbar, vbar, np.array([e - 1 for e in ends], dtype=np.int64)


def _grid_mask(n, grid, pattern):
    """S(t) of the grid patterns this file covers: [N, N]."""
    h, w = grid
    r, c = np.divmod(np.arange(n), w)
    same_row, same_col = r[:, None] == r[None, :], c[:, None] == c[None, :]
    name, _, args = pattern.partition("=")
    if name == "axial-row":
        return same_row
    if name == "axial-column":
        return same_col
    if name == "criss-cross":
        return same_row | same_col
    if name == "window":
        m, s = (list(map(int, args.split(","))) + [0])[:2]
        wr, wc = np.floor_divide(r - s, m), np.floor_divide(c - s, m)
        return (wr[:, None] == wr[None, :]) & (wc[:, None] == wc[None, :])
    raise ValueError(pattern)


def _softmax_rows(scores, mask, values):
    """Output and LSE of each row over its visible columns; an empty row gives 0 and -inf."""
    scores = np.where(mask, scores, -np.inf)
    top = scores.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    weights = np.where(mask, np.exp(scores - top), 0.0)
    total = weights.sum(axis=-1, keepdims=True)
    out = np.where(total > 0, weights @ values / np.where(total > 0, total, 1.0), 0.0)
    with np.errstate(divide="ignore"):
        lse = np.where(total[..., 0] > 0, np.log(total[..., 0]) + top[..., 0], -np.inf)
    return out, lse


def attention(q, k, v, *, causal=False, window=None, dilation=1, global_tokens=None, qkv_global=None,
              summary_block=None, summary_tail="merge", extra=None, seq_lens=None, scale=None, grid=None,
              grid_pattern=None):
    """(out [B,H,Nq,Dv], lse [B,H,Nq]) in float64 of 4-D inputs."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    b_, h_, nq, d = q.shape
    hkv, nk = k.shape[1], k.shape[2]
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    group = h_ // hkv
    pos = np.arange(nq) + nk - nq
    j = np.arange(nk)
    is_global = np.zeros(nk, dtype=bool)
    if global_tokens is not None:
        is_global[list(global_tokens)] = True
    out = np.zeros((b_, h_, nq, v.shape[3]))
    lse = np.full((b_, h_, nq), -np.inf)
    for b in range(b_):
        valid = nk if seq_lens is None else seq_lens[b]
        if grid is not None:
            mask = _grid_mask(nk, grid, grid_pattern)
        elif window is not None:
            left, right = (window, window) if np.isscalar(window) else window
            rel = j[None, :] - pos[:, None]
            mask = (rel >= -left) & (rel <= right) & (rel % dilation == 0)
        else:
            mask = np.ones((nq, nk), dtype=bool)
        row_global = is_global[np.clip(pos, 0, nk - 1)] & (pos < nk)
        mask = mask | is_global[None, :] | row_global[:, None]
        if causal:
            mask &= j[None, :] <= pos[:, None]
        mask &= j[None, :] < valid
        mask &= (pos < valid)[:, None]
        keys, values, side_masks = [k[b]], [v[b]], []
        if summary_block is not None:
            kbar, vbar, last = _summaries(k[b], v[b], valid, summary_block, summary_tail)
            keys.append(kbar)
            values.append(vbar)
            seen = last[None, :] <= pos[:, None] if causal else np.ones((nq, len(last)), dtype=bool)
            side_masks.append(seen)
        if extra is not None:
            keys.append(np.asarray(extra[0], dtype=np.float64)[b])
            values.append(np.asarray(extra[1], dtype=np.float64)[b])
            side_masks.append(np.ones((nq, extra[0].shape[2]), dtype=bool))
        side = np.concatenate(side_masks, axis=1) if side_masks else np.zeros((nq, 0), dtype=bool)
        side &= (pos < valid)[:, None]
        if qkv_global is not None:
            side &= ~row_global[:, None]  # a separately projected global row sees no side keys
        all_k, all_v = np.concatenate(keys, axis=1), np.concatenate(values, axis=1)
        full_mask = np.concatenate([mask, side], axis=1)
        for h in range(h_):
            kv = h // group
            o, l = _softmax_rows(scale * q[b, h] @ all_k[kv].T, full_mask, all_v[kv])
            if qkv_global is not None:
                qg, kg, vg = (np.asarray(x, dtype=np.float64) for x in qkv_global)
                og, lg = _softmax_rows(scale * qg[b, h] @ kg[b, kv].T, mask, vg[b, kv])
                o[row_global], l[row_global] = og[row_global], lg[row_global]
            out[b, h], lse[b, h] = o, l
    return out, lse


def tolerance(storage, expected, rtol=1e-4, atol=2e-5):
    """SPEC.md's tolerance of an output stored in `storage` ("float32", "float16", "bfloat16")
    against the float64 reference of the same rounded inputs: the float32 tolerance, plus half an
    ulp of the stored type at the output's magnitude (float16's subnormals keep a least ulp)."""
    tol32 = atol + rtol * np.abs(expected)
    if storage == "float32":
        return tol32
    bits, least = {"float16": (10, -24), "bfloat16": (7, -133)}[storage]
    _, exponent = np.frexp(np.abs(expected) + tol32)  # the magnitude lies in [2^(e-1), 2^e)
    return 0.5 * np.ldexp(1.0, np.maximum(exponent - 1 - bits, least)) + tol32


def assert_stored(out, expected, storage):
    """out (any array NumPy can widen to float64) within tolerance(storage) of expected."""
    ratio = np.abs(np.asarray(out, dtype=np.float64) - expected) / tolerance(storage, expected)
    worst = float(np.max(ratio)) if ratio.size else 0.0
    assert worst <= 1.0, f"{storage}: an error of {worst:.2f} times the tolerance"

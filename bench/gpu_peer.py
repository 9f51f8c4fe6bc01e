#!/usr/bin/env python3
"""The same-GPU peer of bench/gpu.sh: PyTorch's scaled_dot_product_attention in float32 on the
shapes that `clattn bench` times, and the table that sets the two side by side.

  gpu_peer.py time --pattern dense,causal --n 4096 --h 32 --d 64 [--hkv H] [--window W]
                   [--repeat R] [--warmup W] [--device cuda|cpu] [--mask-max-n N]
      One JSON line per shape on stdout, in `clattn bench --json`'s fields (device, pattern, N,
      D, ms_median, gflops). Windows (|i - j| <= W) take a boolean N x N mask, so they stop at
      --mask-max-n; decode is one query row at the last position against N keys (with GQA).
      Each shape's output is first checked against a float64 computation of one head.
  gpu_peer.py summary BENCH.json... PEER.json
      A table of clattn's figures beside the peer's, shape by shape.
  gpu_peer.py check --clattn build-gpu/clattn --device gpu --dir DIR [--pattern dense,causal,window]
                    [--n 999] [--b 2] [--h 6] [--hkv 2] [--d 64,128] [--window 100] [--tol 2e-4]
      `clattn run` on the device against float64 attention (every batch entry and head, GQA), one
      JSON line per shape; exit status 1 when one is off by more than --tol or fails to run.

GFLOP/s counts 4 * D per (query, visible key) pair and head, as the bench does."""
import argparse
import array
import ast
import json
import statistics
import sys


def visible_pairs(pattern, n, window):
    """Query-key pairs that the bench counts for one head (SPEC.md's S(i), Nq = Nk = n)."""
    if pattern == "dense":
        return n * n
    if pattern == "causal":
        return n * (n + 1) // 2
    if pattern == "window":  # sum over i of min(n - 1, i + w) - max(0, i - w) + 1
        w = min(window, n - 1)
        return n * (2 * w + 1) - w * (w + 1)
    if pattern == "decode":
        return n
    raise ValueError(pattern)


def inputs(torch, pattern, n, b, h, hkv, d, device):
    g = torch.Generator(device="cpu").manual_seed(1)
    nq = 1 if pattern == "decode" else n
    q = torch.randn(b, h, nq, d, generator=g).to(device)
    k = torch.randn(b, hkv, n, d, generator=g).to(device)
    v = torch.randn(b, hkv, n, d, generator=g).to(device)
    return q, k, v


def attention(torch, pattern, q, k, v, window):
    """SDPA in float32 for the pattern: is_causal, or a boolean mask for the window (decode's one
    row sits at the last position: it sees every key)."""
    f = torch.nn.functional.scaled_dot_product_attention
    gqa = {}
    if k.shape[1] != q.shape[1]:  # GQA: SDPA's own (PyTorch 2.5 on), else a copy per query head
        if sdpa_has_gqa(torch):
            gqa = {"enable_gqa": True}
        else:
            k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
            v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
    if pattern == "causal":
        return f(q, k, v, is_causal=True, **gqa)
    if pattern == "window":
        i = torch.arange(q.shape[2], device=q.device)
        mask = (i[:, None] - i[None, :]).abs() <= window
        return f(q, k, v, attn_mask=mask, **gqa)
    return f(q, k, v, **gqa)  # dense


def sdpa_has_gqa(torch):
    """Whether this PyTorch's SDPA takes enable_gqa (asked once, on tiny tensors)."""
    if not hasattr(sdpa_has_gqa, "answer"):
        x, kv = torch.zeros(1, 2, 1, 4), torch.zeros(1, 1, 1, 4)
        try:
            torch.nn.functional.scaled_dot_product_attention(x, kv, kv, enable_gqa=True)
            sdpa_has_gqa.answer = True
        except TypeError:
            sdpa_has_gqa.answer = False
    return sdpa_has_gqa.answer


def check(torch, pattern, q, k, v, window, out):
    """Largest error of head 0 against float64 (with decode's and the bottom-right convention)."""
    q0, k0, v0 = (t[0, 0].double().cpu() for t in (q, k, v))
    s = (q0 @ k0.T) / q0.shape[-1] ** 0.5
    i = torch.arange(q0.shape[0])[:, None] + (k0.shape[0] - q0.shape[0])
    j = torch.arange(k0.shape[0])[None, :]
    if pattern == "causal":
        s = s.masked_fill(j > i, float("-inf"))
    if pattern == "window":
        s = s.masked_fill((i - j).abs() > window, float("-inf"))
    ref = torch.softmax(s, dim=-1) @ v0
    return (out[0, 0].double().cpu() - ref).abs().max().item()


def time_shape(torch, args, pattern, n):
    device = torch.device(args.device)
    q, k, v = inputs(torch, pattern, n, args.b, args.h, args.hkv or args.h, args.d, device)
    out = attention(torch, pattern, q, k, v, args.window)
    err = check(torch, pattern, q, k, v, args.window, out) if n <= 4096 else None
    times = []
    for r in range(args.warmup + args.repeat):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            attention(torch, pattern, q, k, v, args.window)
            end.record()
            torch.cuda.synchronize()
            ms = start.elapsed_time(end)
        else:
            import time
            t0 = time.perf_counter()
            attention(torch, pattern, q, k, v, args.window)
            ms = 1e3 * (time.perf_counter() - t0)
        if r >= args.warmup:
            times.append(ms)
    ms = statistics.median(times)
    flops = 4.0 * args.d * visible_pairs(pattern, n, args.window) * args.b * args.h
    return {"device": f"torch-sdpa-{device.type}", "pattern": pattern, "B": args.b, "H": args.h,
            "Hkv": args.hkv or args.h, "N": n, "D": args.d, "window": args.window if pattern == "window" else 0,
            "ms_median": round(ms, 4), "ms_min": round(min(times), 4), "gflops": round(flops / ms / 1e6, 1),
            "max_err_head0": err, "torch": torch.__version__}


def time_command(args):
    try:
        import torch
    except ImportError as e:
        print(json.dumps({"device": "torch-sdpa", "skipped": f"no PyTorch: {e}"}))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"device": "torch-sdpa-cuda", "skipped": "torch.cuda.is_available() is False"}))
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 (TF32 would be a different peer)
    torch.backends.cudnn.allow_tf32 = False
    for pattern in args.pattern.split(","):
        for n in (int(x) for x in args.n.split(",")):
            if pattern == "window" and n > args.mask_max_n:
                print(json.dumps({"device": f"torch-sdpa-{args.device}", "pattern": pattern, "N": n, "D": args.d,
                                  "skipped": f"an N x N boolean mask past --mask-max-n {args.mask_max_n}"}))
                continue
            try:
                row = time_shape(torch, args, pattern, n)
            except RuntimeError as e:  # out of memory and the like: record it, go on
                row = {"device": f"torch-sdpa-{args.device}", "pattern": pattern, "N": n, "D": args.d,
                       "skipped": str(e).splitlines()[0][:200]}
            print(json.dumps(row), flush=True)
            if args.device == "cuda":
                torch.cuda.empty_cache()
    return 0


def summary_command(files):
    rows = []
    for path in files:
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.startswith("{")]
    key = lambda r: (r.get("pattern"), r.get("N"), r.get("D"), r.get("H"))
    peers = {key(r): r for r in rows if str(r.get("device", "")).startswith("torch") and "ms_median" in r}
    print(f"{'device':<34} {'pattern':<8} {'N':>7} {'D':>4} {'H':>3} {'ms':>9} {'GFLOP/s':>9} "
          f"{'torch ms':>9} {'torch GF/s':>10} {'x torch':>8}")
    for r in rows:
        dev = str(r.get("device", ""))
        if dev.startswith("torch") or dev in ("openblas", "reference") or "ms_median" not in r:
            continue
        p = peers.get(key(r))
        ratio = f"{p['ms_median'] / r['ms_median']:8.2f}" if p and r["ms_median"] > 0 else f"{'-':>8}"
        print(f"{dev[:34]:<34} {r['pattern']:<8} {r['N']:>7} {r['D']:>4} {r['H']:>3} {r['ms_median']:>9.3f} "
              f"{r['gflops']:>9.1f} {p['ms_median'] if p else '-':>9} {p['gflops'] if p else '-':>10} {ratio}")
    for r in rows:
        if "skipped" in r:
            print(f"peer skipped: {r.get('pattern', '')} N={r.get('N', '')}: {r['skipped']}")
        if (r.get("max_err_head0") or 0) > 1e-3:
            print(f"peer WRONG: {r['pattern']} N={r['N']} D={r['D']}: max error {r['max_err_head0']:.2e} against float64")
    return 0


def save_npy(path, t):
    """A float32 tensor as .npy (no NumPy needed)."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (tuple(t.shape),)
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
        f.write(array.array("f", t.float().flatten().tolist()).tobytes())


def load_npy(torch, path):
    """A float32 .npy as a tensor."""
    with open(path, "rb") as f:
        data = f.read()
    size = int.from_bytes(data[8:10], "little")
    header = ast.literal_eval(data[10:10 + size].decode())
    if header["descr"] != "<f4" or header["fortran_order"]:
        raise ValueError(f"{path}: not C-ordered float32 ({header})")
    flat = torch.frombuffer(bytearray(data[10 + size:]), dtype=torch.float32)
    return flat.reshape(header["shape"])


def check_command(args):
    """clattn run on the device, every shape against float64 (SDPA's math on the CPU)."""
    import os
    import subprocess
    import torch
    bad = 0
    os.makedirs(args.dir, exist_ok=True)
    for d in (int(x) for x in args.d.split(",")):
        q, k, v = inputs(torch, "dense", args.n, args.b, args.h, args.hkv, d, "cpu")
        paths = {name: os.path.join(args.dir, f"{name}{d}.npy") for name in ("q", "k", "v", "out")}
        for name, t in (("q", q), ("k", k), ("v", v)):
            save_npy(paths[name], t)
        for pattern in args.pattern.split(","):
            flags = {"dense": [], "causal": ["--causal"], "window": ["--window", str(args.window)]}[pattern]
            cmd = [args.clattn, "run", "--q", paths["q"], "--k", paths["k"], "--v", paths["v"], "--out",
                   paths["out"], "--device", args.device] + flags
            row = {"check": "clattn run", "device": args.device, "pattern": pattern, "B": args.b, "H": args.h,
                   "Hkv": args.hkv, "N": args.n, "D": d}
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                row["failed"] = (done.stderr or done.stdout).strip()[-300:]
                bad += 1
            else:
                ref = attention(torch, pattern, q.double(), k.double(), v.double(), args.window)
                err = (load_npy(torch, paths["out"]).double() - ref).abs().max().item()
                row["max_err"] = err
                row["ok"] = err <= args.tol
                bad += not row["ok"]
            print(json.dumps(row), flush=True)
    return 1 if bad else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("time")
    t.add_argument("--pattern", default="dense")
    t.add_argument("--n", default="4096")
    t.add_argument("--b", type=int, default=1)
    t.add_argument("--h", type=int, default=32)
    t.add_argument("--hkv", type=int, default=0)
    t.add_argument("--d", type=int, default=64)
    t.add_argument("--window", type=int, default=256)
    t.add_argument("--repeat", type=int, default=10)
    t.add_argument("--warmup", type=int, default=2)
    t.add_argument("--device", default="cuda")
    t.add_argument("--mask-max-n", type=int, default=32768)
    s = sub.add_parser("summary")
    s.add_argument("files", nargs="+")
    c = sub.add_parser("check")
    c.add_argument("--clattn", required=True)
    c.add_argument("--device", default="gpu")
    c.add_argument("--dir", required=True)
    c.add_argument("--pattern", default="dense,causal,window")
    c.add_argument("--n", type=int, default=999)
    c.add_argument("--b", type=int, default=2)
    c.add_argument("--h", type=int, default=6)
    c.add_argument("--hkv", type=int, default=2)
    c.add_argument("--d", default="64,128")
    c.add_argument("--window", type=int, default=100)
    c.add_argument("--tol", type=float, default=2e-4)
    args = parser.parse_args()
    if args.command == "check":
        return check_command(args)
    return time_command(args) if args.command == "time" else summary_command(args.files)


if __name__ == "__main__":
    sys.exit(main())

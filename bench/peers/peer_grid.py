#!/usr/bin/env python3
"""PyTorch peers for clattn's 2-D grid patterns (float32, batch 1, CPU), to set beside
`clattn bench --pattern axial,criss-cross,neighborhood,swin --grid H,W`.

Peers (what a PyTorch user without NATTEN would write; NATTEN itself has no CPU/OpenCL path):
  sdpa   torch.nn.functional.scaled_dot_product_attention with an [N, N] mask built from the
         pattern (boolean, and additive float -inf; the faster is reported)
  flex   torch.nn.attention.flex_attention under torch.compile, the pattern as a mask_mod over
         per-axis lookup tables and a BlockMask that skips blocks no query of it needs
Patterns (SPEC.md, "Two-dimensional local attention", tokens row-major on an H x W grid):
  axial         every token of the query's row (axial-row)
  criss-cross   the query's row and column, itself once
  neighborhood  KH x KW neighbors, dilation D, shifted inward at the borders (NATTEN's rule)
  swin          the query's window of M x M, the cuts shifted by S (Swin's shifted windows)

GFLOP/s = 4 * D * H * pairs / time, pairs = the query-key pairs the pattern attends (what
clattn bench counts with clattn_visibility_count). Timing: median and minimum of --repeat runs
after --warmup. Each measurement runs in a child process (thread pools of the two peers never
meet); before timing, each peer is checked against a float64 numpy reference on a small grid.

PEERS_VENV names the virtual environment with torch (default /tmp/peers-venv); the script
re-executes itself with its python.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

PATTERNS = ("axial", "criss-cross", "neighborhood", "swin")
PEERS = ("sdpa", "flex")


def reexec_in_venv():
    venv = os.environ.get("PEERS_VENV", "/tmp/peers-venv")
    py = os.path.join(venv, "bin", "python")
    if os.environ.get("PEERS_IN_VENV") == "1" or os.path.realpath(sys.prefix) == os.path.realpath(venv):
        os.environ["PEERS_IN_VENV"] = "1"
        return
    if not os.path.exists(py):
        sys.exit(f"peer_grid: no python at {py}; set PEERS_VENV")
    os.environ["PEERS_IN_VENV"] = "1"
    os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- the rule per axis

def neighborhood_axis(length, k, d):
    """Per index: its dilation group and the first group member of its window (SPEC.md win())."""
    group, first = [], []
    for i in range(length):
        g, a = i % d, i // d
        members = (length - g + d - 1) // d
        group.append(g)
        first.append(min(max(a - k // 2, 0), max(members - k, 0)))
    return group, first


def swin_axis(length, m, s):
    """Per index: the number of its Swin window (-1: the strip before the first cut)."""
    return [(i - s) // m if i >= s else -1 for i in range(length)]


class Pattern:
    """One pattern on an H x W grid: the axis tables every form of the mask is built from."""

    def __init__(self, name, h, w, kernel, dilation, size, shift):
        self.name, self.h, self.w = name, h, w
        self.kh, self.kw, self.d = kernel[0], kernel[1], dilation
        if name == "neighborhood":
            self.gr, self.fr = neighborhood_axis(h, self.kh, self.d)
            self.gc, self.fc = neighborhood_axis(w, self.kw, self.d)
        if name == "swin":
            self.wr, self.wc = swin_axis(h, size, shift), swin_axis(w, size, shift)

    def mask(self, xp, qr, qc, kr, kc, tables):
        """The rule on index arrays (numpy or torch: xp.* are elementwise), with the axis tables
        in `tables` of the same kind."""
        if self.name == "axial":
            return qr == kr
        if self.name == "criss-cross":
            return (qr == kr) | (qc == kc)
        if self.name == "swin":
            return (tables["wr"][qr] == tables["wr"][kr]) & (tables["wc"][qc] == tables["wc"][kc])
        d = self.d
        rows = (tables["gr"][qr] == kr % d) & (kr // d >= tables["fr"][qr]) & (kr // d < tables["fr"][qr] + self.kh)
        cols = (tables["gc"][qc] == kc % d) & (kc // d >= tables["fc"][qc]) & (kc // d < tables["fc"][qc] + self.kw)
        return rows & cols

    def tables(self, as_array):
        names = {"neighborhood": ("gr", "fr", "gc", "fc"), "swin": ("wr", "wc")}.get(self.name, ())
        return {n: as_array(getattr(self, n)) for n in names}

    def dense_mask(self):
        import numpy as np
        n = self.h * self.w
        t = np.arange(n)
        qr, qc = (t // self.w)[:, None], (t % self.w)[:, None]
        kr, kc = (t // self.w)[None, :], (t % self.w)[None, :]
        return self.mask(np, qr, qc, kr, kc, self.tables(lambda x: np.asarray(x, dtype=np.int64)))


def make_inputs(h, n, d, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((1, h, n, d), dtype=np.float32) for _ in range(3)]


def reference(q, k, v, mask):
    import numpy as np
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    s = np.where(mask, q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1]), -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def time_fn(fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    mid = len(ts) // 2
    return (ts[mid] if len(ts) % 2 else 0.5 * (ts[mid - 1] + ts[mid])), ts[0]


# ----------------------------------------------------------------------------- peers
# A maker returns [(name, run, fetch, path)]: run() attends once, fetch() gives the output.

def torch_setup(threads):
    import torch
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.set_grad_enabled(False)
    return torch


def make_sdpa(pat, q, k, v, args):
    torch = torch_setup(args.threads)
    F = torch.nn.functional
    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
    bm = torch.from_numpy(pat.dense_mask())
    fm = torch.zeros(bm.shape, dtype=torch.float32).masked_fill_(~bm, float("-inf"))
    out, variants = {}, []
    for name, m in (("sdpa bool mask", bm), ("sdpa float mask", fm)):
        def run(m=m, name=name):
            out[name] = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=m)
        variants.append((name, run, lambda name=name: out[name].numpy(), f"{name} [N, N]"))
    return variants


_COMPILED = {}


def make_flex(pat, q, k, v, args):
    torch = torch_setup(args.threads)
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    if "fn" not in _COMPILED:
        _COMPILED["fn"] = torch.compile(flex_attention, dynamic=False, fullgraph=True)
    n, w = pat.h * pat.w, pat.w
    tables = pat.tables(lambda x: torch.tensor(x, dtype=torch.int64))

    def mask_mod(b, h, qi, ki):
        return pat.mask(torch, qi // w, qi % w, ki // w, ki % w, tables)

    bm = create_block_mask(mask_mod, None, None, n, n, device="cpu", BLOCK_SIZE=args.flex_block)
    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
    out = {}

    def run():
        out["o"] = _COMPILED["fn"](tq, tk, tv, block_mask=bm)

    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    path = (f"flex_attention+torch.compile, mask_mod on axis tables, BLOCK_SIZE={args.flex_block}, "
            f"block sparsity {bm.sparsity():.1f}%, first call {first:.1f}s")
    return [("flex", run, lambda: out["o"].numpy(), path)]


MAKERS = {"sdpa": make_sdpa, "flex": make_flex}


def pattern_of(name, h, w, args):
    return Pattern(name, h, w, args.kernel, args.dilation, args.swin[0], args.swin[1])


def child_measure(args):
    h, w = args.grid
    pat = pattern_of(args.child_pattern, h, w, args)
    q, k, v = make_inputs(args.h, h * w, args.d, args.seed)
    pairs = int(pat.dense_mask().sum())
    flops = 4.0 * args.d * args.h * pairs
    results = []
    for name, run, fetch, path in MAKERS[args.child_peer](pat, q, k, v, args):
        med, mn = time_fn(run, args.warmup, args.repeat)
        results.append((med, mn, name, path))
    results.sort()
    med, mn, name, path = results[0]
    import torch
    rec = {"peer": args.child_peer, "pattern": pat.name, "grid": [h, w], "N": h * w, "H": args.h, "D": args.d,
           "ms_median": round(med * 1e3, 3), "ms_min": round(mn * 1e3, 3), "gflops": round(flops / med / 1e9, 2),
           "pairs": pairs, "threads": args.threads, "path": path, "torch": torch.__version__}
    if len(results) > 1:
        rec["alternatives"] = {r[2]: {"ms_median": round(r[0] * 1e3, 3)} for r in results[1:]}
    print(json.dumps(rec), flush=True)


def child_check(args):
    import numpy as np
    h, w = args.check_grid
    q, k, v = make_inputs(2, h * w, args.d, args.seed + 1)
    for name in args.patterns:
        pat = pattern_of(name, h, w, args)
        ref = reference(q, k, v, pat.dense_mask())
        for vname, run, fetch, path in MAKERS[args.child_peer](pat, q, k, v, args):
            run()
            err = float(np.abs(fetch().astype(np.float64) - ref).max())
            print(json.dumps({"check": args.child_peer, "variant": vname, "pattern": name, "grid": [h, w],
                              "max_abs_err": err}), flush=True)


def run_child(extra, args):
    cmd = [sys.executable, os.path.abspath(__file__)] + args.passthrough + extra
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(args.threads)
    env.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                       timeout=args.child_timeout)
    recs = [json.loads(l) for l in p.stdout.splitlines() if l.strip().startswith("{")]
    err = None
    if p.returncode != 0:
        err = f"exit {p.returncode}: " + " | ".join(p.stderr.strip().splitlines()[-3:])[-400:]
    return recs, err


def ints(text):
    return [int(x) for x in text.split(",") if x]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grid", type=ints, default=[64, 64], help="H,W")
    ap.add_argument("--kernel", type=ints, default=[7, 7], help="neighborhood KH,KW")
    ap.add_argument("--dilation", type=int, default=1)
    ap.add_argument("--swin", type=ints, default=[8, 4], help="window M,S")
    ap.add_argument("--h", type=int, default=8)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--patterns", default=",".join(PATTERNS))
    ap.add_argument("--only", default=",".join(PEERS), help="peers: " + ",".join(PEERS))
    ap.add_argument("--flex-block", type=int, default=128)
    ap.add_argument("--check-grid", type=ints, default=[13, 11], help="grid of the float64 check (0,0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--child-timeout", type=int, default=1800)
    ap.add_argument("--child", choices=("measure", "check"), help=argparse.SUPPRESS)
    ap.add_argument("--child-peer", help=argparse.SUPPRESS)
    ap.add_argument("--child-pattern", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.patterns = [p for p in args.patterns.split(",") if p]
    if len(args.swin) == 1:
        args.swin.append(0)
    for p in args.patterns:
        if p not in PATTERNS:
            ap.error(f"unknown pattern {p}")
    peers = [p for p in args.only.split(",") if p]
    if args.child == "measure":
        return child_measure(args)
    if args.child == "check":
        return child_check(args)
    join = lambda xs: ",".join(str(x) for x in xs)
    args.passthrough = ["--grid", join(args.grid), "--kernel", join(args.kernel), "--dilation", str(args.dilation),
                        "--swin", join(args.swin), "--h", str(args.h), "--d", str(args.d), "--repeat",
                        str(args.repeat), "--warmup", str(args.warmup), "--threads", str(args.threads),
                        "--patterns", ",".join(args.patterns), "--flex-block", str(args.flex_block),
                        "--check-grid", join(args.check_grid), "--seed", str(args.seed)]
    if args.check_grid[0] > 0:
        for peer in peers:
            recs, err = run_child(["--child", "check", "--child-peer", peer], args)
            for r in recs:
                log(f"check {peer:5s} {r['variant']:16s} {r['pattern']:13s} {r['grid']} "
                    f"max_abs_err {r['max_abs_err']:.2e}")
            if err:
                log(f"check {peer}: {err}")
    rows = []
    for peer in peers:
        for pattern in args.patterns:
            recs, err = run_child(["--child", "measure", "--child-peer", peer, "--child-pattern", pattern], args)
            if err and not recs:
                recs = [{"peer": peer, "pattern": pattern, "N": args.grid[0] * args.grid[1], "error": err}]
            for r in recs:
                print(json.dumps(r), flush=True)
                rows.append(r)
    log(f"\n{'peer':5s} {'pattern':13s} {'N':>6s} {'ms_med':>9s} {'ms_min':>9s} {'GFLOP/s':>8s}  path")
    for r in rows:
        if "error" in r:
            log(f"{r['peer']:5s} {r['pattern']:13s} {r['N']:6d}  ERROR {r['error']}")
        else:
            log(f"{r['peer']:5s} {r['pattern']:13s} {r['N']:6d} {r['ms_median']:9.2f} {r['ms_min']:9.2f} "
                f"{r['gflops']:8.2f}  {r['path']}")


if __name__ == "__main__":
    reexec_in_venv()
    main()

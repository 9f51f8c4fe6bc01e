#!/usr/bin/env python3
"""Time per layer of sequence-parallel attention on P ranks (docs/SCALING.md): compute from a measured
rate per rank, communication from the bytes and messages clattn's MPI patterns move (as `clattn bench
--mpi` counts them) over a network of a stated bandwidth and latency. Columns: the window's halo, the
dense ring, the causal ring with clattn's zigzag (moves of rows included), and a plain causal ring
without it (for comparison: clattn does not run that one). Plain Python, no packages.

  bench/scaling_model.py --rate window=GFLOPS,dense=GFLOPS,causal=GFLOPS [--n N] [--h H] [--d D]
                         [--window W]
"""
import argparse
import math

NETWORKS = [("25 Gb/s, 10 us", 25e9 / 8, 10e-6), ("200 Gb/s, 2 us", 200e9 / 8, 2e-6)]
RANKS = [2 ** i for i in range(1, 11)]


def window_layer(p, n, h, d, w, rate, net):
    """Halo exchange overlapped with the rows that need no halo; the edge rows after it. Compute counts
    the dummy query rows this implementation adds to keep positions (R rows in each of two edge blocks)."""
    beta, alpha = net
    shard = n / p
    flops_row = 4.0 * d * h * (2 * w + 1)
    rows = shard + 2 * w  # + the dummy rows of the two edge blocks
    compute = rows * flops_row / (rate * 1e9)
    interior = max(0.0, shard - 2 * w) * flops_row / (rate * 1e9)
    messages = 2 * math.ceil(w / shard) if p > 1 else 0
    received = 2 * w * h * 2 * d * 4 if p > 1 else 0  # L + R key rows of K and V
    comm = messages * alpha + received / beta
    return max(interior, comm) + (compute - interior), n * flops_row / (rate * 1e9)


def ring_layer(p, n, h, d, rate, net, causal):
    """P steps, each a block of shard x shard overlapped with passing the next K/V shard on; causal: half
    the work, balanced by the zigzag, whose moves of Q, K, V there and O, LSE back are not overlapped."""
    beta, alpha = net
    shard = n / p
    total = 4.0 * d * h * n * n / (2 if causal else 1) / (rate * 1e9)
    step = total / (p * p)
    message = alpha + shard * h * 2 * d * 4 / beta
    time = step + (p - 1) * max(step, message)
    if causal and p > 1:
        moved = shard * h * (d + 2 * d + d + 1) * 4 * (p - 1) / p
        time += 2 * alpha * (p - 1) + moved / beta
    return time, total


def plain_causal_layer(p, n, h, d, rate, net):
    """The causal ring without the zigzag: the last rank computes p - 1 full blocks and its diagonal
    one while the others wait for it."""
    beta, alpha = net
    shard = n / p
    total = 4.0 * d * h * n * n / 2 / (rate * 1e9)
    block = 4.0 * d * h * shard * shard / (rate * 1e9)
    message = alpha + shard * h * 2 * d * 4 / beta
    return block / 2 + (p - 1) * max(block, message), total


def efficiency(layer, p):
    time, single = layer(p)
    return single / (p * time), time


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", required=True, help="window=G,dense=G,causal=G: measured GFLOP/s of one rank")
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--h", type=int, default=8)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--window", type=int, default=256, help="L = R = W")
    ap.add_argument("--ring-n", type=int, default=1 << 17, help="N of the dense and causal layers")
    args = ap.parse_args()
    rate = dict((k, float(v)) for k, v in (x.split("=") for x in args.rate.split(",")))
    n, h, d, w, rn = args.n, args.h, args.d, args.window, args.ring_n
    for name, beta, alpha in NETWORKS:
        print(f"\n{name}: H = Hkv = {h}, D = {d}; window +-{w} at N = {n}, dense and causal at N = {rn}")
        print(f"{'P':>5} | {'window ms':>10} {'eff':>5} | {'dense ms':>10} {'eff':>5} | {'causal ms':>10} {'eff':>5}"
              f" | {'plain ms':>10} {'eff':>5}")
        best = {"window": 1, "dense": 1, "causal": 1, "plain": 1}  # the largest P up to which every P keeps >= 80%
        for p in RANKS:
            net = (beta, alpha)
            rows = {
                "window": efficiency(lambda q: window_layer(q, n, h, d, w, rate["window"], net), p),
                "dense": efficiency(lambda q: ring_layer(q, rn, h, d, rate["dense"], net, False), p),
                "causal": efficiency(lambda q: ring_layer(q, rn, h, d, rate["causal"], net, True), p),
                "plain": efficiency(lambda q: plain_causal_layer(q, rn, h, d, rate["causal"], net), p),
            }
            for k, (e, _) in rows.items():
                if e >= 0.8 and best[k] == p // 2:
                    best[k] = p
            print(f"{p:>5} | " + " | ".join(f"{rows[k][1] * 1e3:>10.1f} {rows[k][0]:>5.2f}" for k in rows))
        print("largest P at >= 80% efficiency: " + ", ".join(f"{k} {v}" for k, v in best.items()))


if __name__ == "__main__":
    main()

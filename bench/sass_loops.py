#!/usr/bin/env python3
"""The loops of NVIDIA SASS, as `nvdisasm -c -hex` prints it: for each loop (a backward branch),
its instructions, multiply-adds (FFMA), __local and global loads, and the cycles one warp alone
takes per iteration by ptxas's own schedule (the stall counts and scoreboards in each
instruction's control bits), with the latencies the schedule leaves to the hardware assumed:
LDS 30 cycles, LDG 300, MUFU and S2R 20, the rest 10. One warp issues at most one instruction a
cycle, so with W warps a quarter of the SM is bounded by min(1, W x instructions / lone cycles);
FFMA/cycle is that bound times the loop's FFMA share. A model for comparing builds of one kernel,
not a prediction of its time (docs/GPU.md, "Instructions per key tile").

With `nvdisasm -c -hex -plr -lrm narrow` (register liveness beside each instruction) it also says,
for each loop, the most registers live at one of its instructions and how many of those the loop
never writes: values computed before it and held across it, such as addresses that the compiler
hoisted out of it (docs/GPU.md, "Registers that held addresses").

usage: bench/sass_loops.py FILE.sass [--min-ffma N]   (loops with fewer FFMA and no HMMA are
left out; 16)
"""
import argparse
import collections
import re

LATENCY = {'LDS': 30, 'LDSM': 30, 'LDG': 300, 'MUFU': 20, 'S2R': 20, 'SHFL': 25, 'ATOMS': 40}


def parse(path):
    """Functions as lists of instructions (dicts) and their labels (name -> index)."""
    functions = collections.OrderedDict()
    name, ins, labels = None, [], {}
    lines = open(path).read().split('\n')
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        f = re.match(r'\.text\.([A-Za-z0-9_]+):', s)
        if f:
            name, ins, labels = f.group(1), [], {}
            functions[name] = (ins, labels)
        label = re.match(r'^(\.L_x_\d+):', s)
        if label:
            labels[label.group(1)] = len(ins)
        m = re.match(r'/\*([0-9a-f]{4,})\*/\s+(.*?);\s+/\* 0x([0-9a-f]{16}) \*/', s)
        if m and i + 1 < len(lines):
            hi = re.search(r'0x([0-9a-f]{16})', lines[i + 1])
            if hi and name is not None:
                bits = int(hi.group(1), 16)
                text = m.group(2).strip()
                body = text.partition(' ')[2] if text.startswith('@') else text
                # -lrm narrow: a column a register (R0 first), ':' live, 'v' read, '^' written, 'x' both
                live = re.search(r'// \| +\d+ ([ :v^x]*)\|', lines[i + 1])
                ins.append({'addr': int(m.group(1), 16), 'op': body.split()[0] if body else '', 'text': text,
                            'stall': (bits >> 41) & 15, 'wbar': (bits >> 46) & 7, 'rbar': (bits >> 49) & 7,
                            'wait': (bits >> 52) & 63, 'live': live.group(1) if live else None})
                i += 2
                continue
        i += 1
    return functions


def loops(ins, labels):
    """(first, last) instruction indices of each loop: a branch back to a label at or before it."""
    found = []
    for k, x in enumerate(ins):
        if x['op'].startswith('BRA'):
            t = re.search(r'(\.L_x_\d+)', x['text'])
            if t and t.group(1) in labels and labels[t.group(1)] <= k:
                found.append((labels[t.group(1)], k))
    return sorted(found)


def lone_warp_cycles(body, reps=6):
    """Cycles of the last of `reps` iterations run back to back by one warp."""
    t, ready, start = 0, [0] * 8, 0
    for _ in range(reps):
        start = t
        for x in body:
            for b in range(6):
                if x['wait'] >> b & 1:
                    t = max(t, ready[b])
            if x['wbar'] != 7:
                ready[x['wbar']] = max(ready[x['wbar']], t + LATENCY.get(x['op'].split('.')[0], 10))
            if x['rbar'] != 7:
                ready[x['rbar']] = max(ready[x['rbar']], t + 4)
            t += max(1, x['stall'])
    return t - start


def held_across(body):
    """The most registers live at one instruction of a loop, and how many of those no instruction
    of the loop writes (None without liveness columns)."""
    if any(x['live'] is None for x in body):
        return None
    written = {r for x in body for r, c in enumerate(x['live']) if c in '^x'}
    peak = max(body, key=lambda x: sum(c != ' ' for c in x['live']))['live']
    live = [r for r, c in enumerate(peak) if c != ' ']
    return len(live), sum(r not in written for r in live)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('sass')
    ap.add_argument('--min-ffma', type=int, default=16)
    args = ap.parse_args()
    functions = parse(args.sass)
    if not functions:
        raise SystemExit(f'{args.sass}: no function with control bits (nvdisasm -c -hex output expected)')
    for name, (ins, labels) in functions.items():
        print(f'{name}: {len(ins)} instructions')
        found = loops(ins, labels)
        for first, last in found:
            body = ins[first:last + 1]
            kinds = collections.Counter(x['op'].split('.')[0] for x in body)
            ffma = kinds['FFMA']
            if ffma < args.min_ffma and not kinds['HMMA']:
                continue
            held = held_across(body)
            held = f'; {held[0]} registers live at most, {held[1]} of them held across' if held else ''
            inner = sum(1 for f, l in found if first <= f and l <= last and (f, l) != (first, last))
            if inner:  # every path of its body at once: counts, but no schedule
                print(f'  loop {body[0]["addr"]:#07x}: {len(body):4d} instructions on all its paths, FFMA {ffma:4d}, '
                      f'HMMA {kinds["HMMA"]:3d}, LDS {kinds["LDS"]:3d}, LDG {kinds["LDG"]:3d}, BAR {kinds["BAR"]}; '
                      f'holds {inner} loops{held}')
                continue
            cycles = lone_warp_cycles(body)
            bound = '  '.join(f'{w}w {min(1.0, w * len(body) / cycles) * ffma / len(body):.2f}' for w in (1, 2, 3, 4))
            print(f'  loop {body[0]["addr"]:#07x}: {len(body):4d} instructions, FFMA {ffma:4d} '
                  f'({100 * ffma / len(body):4.1f}%), HMMA {kinds["HMMA"]:3d}, LDS {kinds["LDS"]:3d}, LDG '
                  f'{kinds["LDG"]:3d}; one warp {cycles:5d} cycles an iteration; FFMA/cycle with warps: {bound}{held}')


if __name__ == '__main__':
    main()

#!/usr/bin/env python3
"""The GPU attention kernel taken apart, for timing only: cl/attention_gpu.cl with one part of each
key tile left out, so that `clattn bench` on a build that reads its kernels from disk
(CLATTN_KERNELS_FROM_DISK) says what that part costs on a GPU. The results are wrong by design.

usage: bench/gpu_apart.py list
       bench/gpu_apart.py write VARIANT SOURCE.cl OUT.cl
       bench/gpu_apart.py run [--device SPEC] [--n N] [--h H] [--d LIST] [--repeat R] [--warmup W]
                              [--jobs J] [--cmake-arg ARG]... [--dir DIR]
`run` (bench/gpu.sh's `apart` step) copies the tree to DIR (default /tmp/clattn-apart), builds
its tool reading kernels from DIR/cl, and times dense at each D with each variant in turn.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

# Each variant: (what it leaves out, [(text of the kernel, its replacement), ...]). Every text
# must occur exactly once, so that a changed kernel stops the step instead of timing the whole.
VARIANTS = {
    'whole': ('nothing (the same build, for the ratio)', []),
    'no-scores': ('the score loop over D (scores stay 0)',
                  [('for (int d = 0; d < D / QW; d++) {', 'for (int d = 0; d < 0; d++) {')]),
    'no-pv': ('P.V (both of its loops)',
              [('    if ((CLATTN_MMA || edge) && nonfinite[FLAG(t)]) {', '    if (false) {'),
               ('        for (int t = 0; t < BN; t += PW) {', '        for (int t = 0; t < 0; t += PW) {')]),
    'no-staging': ('the global loads and __local stores of K and V (the tiles compute on stale __local)',
                   [('    STAGE_ROWS_IN(qv_t, QW, ks, QS, cur.k, cur.count, D, BN, WG)\n', '\n'),
                    ('    STAGE_ROWS_IN(ov_t, OW, vs, VS, cur.v, cur.count, DV, BN, WG)\n', '\n')]),
    'no-rowmax': ("the row max across a row's work-items (each tile's max taken as 0)",
                  [('const float mnew = fmax(st->m[i], mt[i]);', 'const float mnew = 0.0f;')]),
}


def write(name, source, out):
    text = open(source).read()
    for old, new in VARIANTS[name][1]:
        if text.count(old) != 1:
            raise SystemExit(f'gpu_apart.py {name}: {old.strip()!r} occurs {text.count(old)} times in {source}')
        text = text.replace(old, new)
    open(out, 'w').write(text)


def run(args):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shutil.rmtree(args.dir, ignore_errors=True)
    shutil.copytree(root, args.dir, ignore=shutil.ignore_patterns('.git', 'build*', 'gpu-out', 'gpu-debs'))
    build = os.path.join(args.dir, 'build')
    subprocess.run(['cmake', '-S', args.dir, '-B', build, '-DCMAKE_BUILD_TYPE=Release', '-DCLATTN_BENCH_OPENBLAS=OFF',
                    '-DCLATTN_KERNELS_FROM_DISK=ON'] + args.cmake_arg, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(['cmake', '--build', build, '-j', str(args.jobs), '--target', 'clattn_tool'], check=True,
                   stdout=subprocess.DEVNULL)
    kernel = os.path.join('cl', 'attention_gpu.cl')
    for name, (what, _) in VARIANTS.items():
        write(name, os.path.join(root, kernel), os.path.join(args.dir, kernel))
        for d in args.d.split(','):
            print(f'== {name} (leaves out {what}), D = {d}', flush=True)
            with tempfile.TemporaryDirectory() as cache:  # no program built from another variant
                subprocess.run([os.path.join(build, 'clattn'), 'bench', '--device', args.device, '--pattern', 'dense',
                                '--n', args.n, '--h', args.h, '--d', d, '--repeat', args.repeat, '--warmup',
                                args.warmup, '--brief', '--cache-dir', cache], check=True)


def main():
    if len(sys.argv) == 2 and sys.argv[1] == 'list':
        for name, (what, _) in VARIANTS.items():
            print(f'{name:11s} leaves out {what}')
    elif len(sys.argv) == 5 and sys.argv[1] == 'write' and sys.argv[2] in VARIANTS:
        write(*sys.argv[2:])
    elif len(sys.argv) >= 2 and sys.argv[1] == 'run':
        ap = argparse.ArgumentParser(prog='gpu_apart.py run')
        ap.add_argument('--device', default='gpu')
        ap.add_argument('--n', default='4096')
        ap.add_argument('--h', default='32')
        ap.add_argument('--d', default='64,128')
        ap.add_argument('--repeat', default='5')
        ap.add_argument('--warmup', default='2')
        ap.add_argument('--jobs', default=str(os.cpu_count()))
        ap.add_argument('--cmake-arg', action='append', default=[])
        ap.add_argument('--dir', default='/tmp/clattn-apart')
        run(ap.parse_args(sys.argv[2:]))
    else:
        raise SystemExit(__doc__.strip())


if __name__ == '__main__':
    main()

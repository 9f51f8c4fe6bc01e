/* The 2-D grid patterns (axial row and column, criss-cross, neighborhood with dilation, Swin
 * windows with shift) on every OpenCL device and both kernel variants, against the reference:
 * grids that are no tile multiple, kernels of 3, 7, 13 and larger than the grid, dilations 1 to
 * 3, shifts 0 and M/2, GQA, B > 1, padding, causal and LSE; a few in float16 and bfloat16. */
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define TOLERANCE 2e-4

static const char *const pattern_names[] = {"none",        "axial-row",    "axial-column",
                                            "criss-cross", "neighborhood", "window"};

static void check_grid(clattn_context *dev, clattn_context *ref, const char *variant, const clattn_problem *p,
                       const int *seq_lens)
{
    double err = 0.0;
    const int s = harness_compare(dev, ref, p, seq_lens, 1, &err);
    check(s == CLATTN_STATUS_OK && err <= TOLERANCE,
          "%-8s %-12s %2dx%-2d k %dx%d dil %d M %d shift %d B %d H %d/%d D %d/%d causal %d pad %d%s: %.2e", variant,
          pattern_names[p->grid_pattern], p->grid_h, p->grid_w, p->grid_kernel_h, p->grid_kernel_w, p->grid_dilation,
          p->grid_window_size, p->grid_shift, p->batch, p->heads, p->kv_heads ? p->kv_heads : p->heads, p->head_dim,
          p->value_dim ? p->value_dim : p->head_dim, p->causal, seq_lens != NULL, harness_storage(p->dtype), err);
}

static clattn_problem grid(int h, int w, clattn_grid_pattern pattern)
{
    return (clattn_problem){.batch = 2,
                            .heads = 4,
                            .kv_heads = 2,
                            .q_len = h * w,
                            .head_dim = 32,
                            .value_dim = 16,
                            .grid_pattern = pattern,
                            .grid_h = h,
                            .grid_w = w};
}

/* Float16 and bfloat16 storage: a dilated causal neighborhood (also with an odd head dimension,
 * whose padding rows are written where no vector store is aligned) and two shifted Swin windows
 * (4 on the CPU variant's tiles, 7 on its regions kernel), with padding and multi-query heads. */
static void run_stored(clattn_context *dev, clattn_context *ref, const char *variant)
{
    static const int lens[] = {196, 150};
    clattn_problem nb = grid(14, 14, CLATTN_GRID_NEIGHBORHOOD);
    nb.grid_kernel_h = nb.grid_kernel_w = 7;
    nb.grid_dilation = 2;
    nb.causal = 1;
    clattn_problem odd = nb;
    odd.head_dim = odd.value_dim = 33;
    clattn_problem win = grid(14, 14, CLATTN_GRID_WINDOW);
    win.kv_heads = 1;
    win.grid_window_size = 4;
    win.grid_shift = 2;
    clattn_problem win7 = win;
    win7.grid_window_size = 7;
    win7.grid_shift = 3;
    for (clattn_dtype dtype = CLATTN_DTYPE_F16; dtype <= CLATTN_DTYPE_BF16; dtype++) {
        nb.dtype = odd.dtype = win.dtype = win7.dtype = dtype;
        check_grid(dev, ref, variant, &nb, lens);
        check_grid(dev, ref, variant, &odd, lens);
        check_grid(dev, ref, variant, &win, lens);
        check_grid(dev, ref, variant, &win7, lens);
    }
}

static void run_variant(clattn_context *dev, clattn_context *ref, const char *variant, size_t index)
{
    if (index == 0 || index == 2) /* cpu6 and local32 */
        run_stored(dev, ref, variant);
    static const int grids[][2] = {{7, 9}, {14, 14}, {31, 17}};
    const int full = index == 0; /* the other variants take every other case */
    int count = 0;
    for (size_t g = 0; g < sizeof grids / sizeof grids[0]; g++) {
        const int h = grids[g][0], w = grids[g][1];
        for (int pattern = CLATTN_GRID_AXIAL_ROW; pattern <= CLATTN_GRID_CRISS_CROSS; pattern++) {
            const clattn_problem p = grid(h, w, (clattn_grid_pattern)pattern);
            check_grid(dev, ref, variant, &p, NULL);
        }
        static const int kernels[] = {3, 7, 13, 40}; /* 40: larger than every grid side */
        for (size_t k = 0; k < sizeof kernels / sizeof kernels[0]; k++)
            for (int dilation = 1; dilation <= 3; dilation++) {
                if (!full && count++ % 2)
                    continue;
                clattn_problem p = grid(h, w, CLATTN_GRID_NEIGHBORHOOD);
                p.grid_kernel_h = kernels[k];
                p.grid_kernel_w = kernels[k] == 3 ? 5 : kernels[k];
                p.grid_dilation = dilation;
                check_grid(dev, ref, variant, &p, NULL);
            }
        static const int sizes[] = {4, 7};
        for (size_t m = 0; m < sizeof sizes / sizeof sizes[0]; m++)
            for (int half = 0; half <= 1; half++) {
                clattn_problem p = grid(h, w, CLATTN_GRID_WINDOW);
                p.grid_window_size = sizes[m];
                p.grid_shift = half ? sizes[m] / 2 : 0;
                check_grid(dev, ref, variant, &p, NULL);
            }
    }

    /* 64 x 48 at D = 64: the bench's shapes, smaller; multi-head attention (no GQA). */
    static const struct {
        clattn_grid_pattern pattern;
        int kh, kw, dilation, size, shift;
    } large[] = {{CLATTN_GRID_NEIGHBORHOOD, 7, 7, 1, 0, 0}, {CLATTN_GRID_NEIGHBORHOOD, 13, 5, 2, 0, 0},
                 {CLATTN_GRID_WINDOW, 0, 0, 1, 8, 4},       {CLATTN_GRID_WINDOW, 0, 0, 1, 7, 0},
                 {CLATTN_GRID_CRISS_CROSS, 0, 0, 1, 0, 0},  {CLATTN_GRID_AXIAL_COLUMN, 0, 0, 1, 0, 0}};
    for (size_t c = 0; c < sizeof large / sizeof large[0]; c++) {
        if (!full && c % 2)
            continue;
        clattn_problem p = {.batch = 1,
                            .heads = 2,
                            .q_len = 64 * 48,
                            .head_dim = 64,
                            .grid_pattern = large[c].pattern,
                            .grid_h = 64,
                            .grid_w = 48,
                            .grid_kernel_h = large[c].kh,
                            .grid_kernel_w = large[c].kw,
                            .grid_dilation = large[c].dilation,
                            .grid_window_size = large[c].size,
                            .grid_shift = large[c].shift};
        check_grid(dev, ref, variant, &p, NULL);
    }

    /* Padding that cuts the grid (and a batch entry of nothing), causal, scale. */
    static const int lens[] = {196, 150};
    clattn_problem nb = grid(14, 14, CLATTN_GRID_NEIGHBORHOOD);
    nb.grid_kernel_h = nb.grid_kernel_w = 7;
    check_grid(dev, ref, variant, &nb, lens);
    nb.causal = 1;
    nb.grid_dilation = 2;
    nb.scale = 0.3f;
    check_grid(dev, ref, variant, &nb, lens);
    static const int lens0[] = {0, 77};
    clattn_problem win = grid(14, 14, CLATTN_GRID_WINDOW);
    win.grid_window_size = 4;
    win.grid_shift = 2;
    check_grid(dev, ref, variant, &win, lens0);
    /* The CPU variant's regions kernel (Swin windows, axial rows and criss-cross, whose regions
     * hold 16 tokens or more): padding that cuts a region, causal inside a region (the queries of
     * a vector see different keys), multi-query heads. */
    static const int lens_win7[] = {150, 101}, lens_row[] = {527, 300};
    clattn_problem win7 = grid(14, 14, CLATTN_GRID_WINDOW);
    win7.grid_window_size = 7;
    win7.grid_shift = 3;
    win7.causal = 1;
    win7.kv_heads = 1;
    check_grid(dev, ref, variant, &win7, lens_win7);
    clattn_problem row = grid(31, 17, CLATTN_GRID_AXIAL_ROW);
    row.causal = 1;
    check_grid(dev, ref, variant, &row, lens_row);
    row.grid_pattern = CLATTN_GRID_CRISS_CROSS;
    check_grid(dev, ref, variant, &row, lens_row);
    /* A window larger than the grid, shifted past the end of its rows (7 < 8): each row strip is
     * the whole axis. */
    clattn_problem big = grid(7, 9, CLATTN_GRID_WINDOW);
    big.grid_window_size = 12;
    big.grid_shift = 8;
    check_grid(dev, ref, variant, &big, NULL);
    clattn_problem cc = grid(7, 9, CLATTN_GRID_CRISS_CROSS);
    cc.causal = 1;
    cc.kv_heads = 1; /* multi-query */
    static const int lens_cc[] = {0, 40};
    check_grid(dev, ref, variant, &cc, lens_cc);
    /* The largest head dimension with value rows of 72 (not a multiple of 16), padding and GQA,
     * on each of the CPU variant's 2-D kernels (and the GPU variant's): a dilated causal
     * neighborhood (pairs), Swin windows of 31.5 tokens on average (regions) and axial columns of
     * 7 (tiles). */
    static const int lens_wide[] = {63, 41};
    clattn_problem wide = grid(7, 9, CLATTN_GRID_NEIGHBORHOOD);
    wide.head_dim = 256;
    wide.value_dim = 72;
    wide.grid_kernel_h = 5;
    wide.grid_kernel_w = 3;
    wide.grid_dilation = 2;
    wide.causal = 1;
    check_grid(dev, ref, variant, &wide, lens_wide);
    wide.grid_pattern = CLATTN_GRID_WINDOW;
    wide.grid_window_size = 7;
    wide.causal = 0;
    check_grid(dev, ref, variant, &wide, lens_wide);
    wide.grid_pattern = CLATTN_GRID_AXIAL_COLUMN;
    check_grid(dev, ref, variant, &wide, lens_wide);
}

/* `test_grid NAME...` runs the named variants alone (CTest runs them as tests side by side:
 * together they took 7 minutes on 2 Zen 3 cores), `test_grid` all of them. */
int main(int argc, char **argv)
{
    /* The CPU variants: the 2-D kernels' register blocks for AVX2 (cpu6) and, with `lanes`, for
     * AVX-512 (cpu16x32), whichever CPU runs the test. The GPU variant's kernel stages a block's K
     * and V one load at a time in local32 and all loads first in local64 (stage 8), and reads them
     * where they lie in direct32 (ARM Mali's row, `direct`). */
    static const clattn_tiles variants[] = {
        {.cpu_variant = 1, .rows = 6, .kw = 16},
        {.cpu_variant = 1, .rows = 16, .kw = 32, .lanes = 1},
        {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 2, .tn = 2},
        {.cpu_variant = 0, .rows = 1, .bm = 64, .bn = 8, .tm = 4, .tn = 2, .stage = 8},
        {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 16, .tm = 2, .tn = 2, .direct = 1}};
    static const char *const names[] = {"cpu6", "cpu16x32", "local32", "local64", "direct32"};
    enum { COUNT = sizeof variants / sizeof variants[0] };
    clattn_tiles chosen[COUNT];
    const char *chosen_names[COUNT];
    size_t n = 0;
    int known = 0; /* arguments that name a variant */
    for (size_t v = 0; v < COUNT; v++) {
        int named = argc == 1;
        for (int a = 1; a < argc; a++)
            if (strcmp(argv[a], names[v]) == 0) {
                named = 1;
                known++;
            }
        if (named) {
            chosen[n] = variants[v];
            chosen_names[n++] = names[v];
        }
    }
    if (known < argc - 1) {
        check(0, "usage: test_grid [cpu6|cpu16x32|local32|local64|direct32]...");
        return check_exit();
    }
    return harness_each_variant(chosen, chosen_names, n, run_variant);
}

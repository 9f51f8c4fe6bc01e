/* Random problems against the reference, to reach the combinations that the other tests' fixed
 * lists leave out: on every device, CASES problems drawn from a fixed seed (every pattern of
 * SPEC.md alone and combined, 2-D grids, decode, GQA, padding, Dv != D, head dims of every residue
 * mod 4 from 5 to 160, the three storage types), each with tiles drawn at random: the table's, the
 * CPU variant's or the GPU variant's with options that a CPU runs (emulated tensor cores,
 * shuffles through __local, K and V read in place, forced split sizes). Not K and V loaded a step
 * ahead (prefetch, async: test_async's), nor blocks over 16 scores or tiles over 32 keys:
 * Intel's CPU compiler spent minutes on such kernels (D = 93 in bfloat16, 6 x 56 tiles of 2 x 8,
 * with and without prefetch) and over a minute on D = 254 (test_dense and test_variant take 256),
 * and this test must stay under a minute.
 * Every case must match the reference within TOLERANCE. The draws are the same on every run;
 * `test_random SEED [CASES]` draws others, and a failing case's line names its seed and case, so
 * `test_random SEED CASE+1` and the line reproduce it. (A differential fuzz of this kind found
 * that the CPU variant's programs did not build for head dims of 2 mod 4.) */
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"
#include "random.h" /* bench/random.c: the tests' one generator */

#define TOLERANCE 2e-4
#define CASES 32 /* per device: under a minute on two cores for both CPU runtimes, most of it compiling */
#define MAX_GLOBAL 6

static unsigned long long seed = 2026;
static int cases = CASES;

static int chance(unsigned long long *s, int percent)
{
    return random_int(1, 100, s) <= percent;
}

#define PICK(s, list) (list)[random_int(0, (int)(sizeof(list) / sizeof((list)[0])) - 1, s)]

typedef struct {
    clattn_problem p;
    int global_idx[MAX_GLOBAL];
    int seq_lens[2];
    int padded;
    int forced; /* 0: the table's tiles; 1: tiles below */
    clattn_tiles tiles;
    clattn_split_tiles split;
} random_case;

static void draw_grid(unsigned long long *s, clattn_problem *p)
{
    p->grid_h = random_int(1, 16, s);
    p->grid_w = random_int(1, 16, s);
    p->q_len = p->grid_h * p->grid_w;
    p->grid_pattern = (clattn_grid_pattern)random_int(CLATTN_GRID_AXIAL_ROW, CLATTN_GRID_WINDOW, s);
    p->grid_kernel_h = random_int(1, 7, s);
    p->grid_kernel_w = random_int(1, 7, s);
    p->grid_dilation = random_int(1, 2, s);
    p->grid_window_size = random_int(1, 7, s);
    p->grid_shift = random_int(0, p->grid_window_size - 1, s);
}

static void draw_patterns(unsigned long long *s, random_case *c)
{
    clattn_problem *p = &c->p;
    const int nk = p->kv_len;
    p->causal = chance(s, 50);
    if (chance(s, 50)) {
        p->window = 1;
        p->window_left = random_int(0, 79, s);
        p->window_right = random_int(0, 79, s);
        p->dilation = chance(s, 30) ? random_int(1, 3, s) : 1;
    }
    if (chance(s, 30) && nk > 1) { /* distinct positions, in no order */
        const int n = random_int(1, nk < MAX_GLOBAL ? nk : MAX_GLOBAL, s);
        for (int g = 0; g < n; g++) {
            int j, seen;
            do {
                j = random_int(0, nk - 1, s);
                seen = 0;
                for (int e = 0; e < g; e++)
                    seen |= c->global_idx[e] == j;
            } while (seen);
            c->global_idx[g] = j;
        }
        p->global_idx = c->global_idx;
        p->num_global = n;
        p->global_qkv = chance(s, 30);
    }
    if (chance(s, 25)) {
        p->summary_block = random_int(1, 39, s);
        p->summary_tail = chance(s, 50) ? CLATTN_SUMMARY_TAIL_OWN : CLATTN_SUMMARY_TAIL_MERGE;
    }
    if (chance(s, 20))
        p->extra_len = random_int(1, 8, s);
}

/* Case i's head dim is i mod 4 below a multiple of 4: every residue in every run, each of which
 * the kernels read in vectors of their own width. */
static void draw_problem(unsigned long long *s, int i, random_case *c)
{
    static const int dims[] = {8, 16, 32, 48, 64, 80, 96, 128, 160};
    static const int value_dims[] = {4, 8, 13, 24, 64, 128};
    static const int group[] = {1, 1, 2, 3, 4};
    clattn_problem *p = &c->p;
    p->batch = random_int(1, 2, s);
    p->kv_heads = random_int(1, 3, s);
    p->heads = p->kv_heads * PICK(s, group);
    p->head_dim = PICK(s, dims) - i % 4;
    p->value_dim = chance(s, 60) ? p->head_dim : PICK(s, value_dims);
    const int kind = random_int(1, 100, s);
    if (kind <= 15) {
        draw_grid(s, p);
        p->kv_len = p->q_len;
    } else {
        if (kind <= 30) { /* decode */
            p->kv_len = random_int(1, 699, s);
            p->q_len = random_int(1, 4, s);
        } else {
            p->kv_len = random_int(1, 299, s);
            p->q_len = chance(s, 70) ? p->kv_len : random_int(1, p->kv_len, s);
        }
        draw_patterns(s, c);
    }
    c->padded = chance(s, 35);
    for (int b = 0; b < p->batch; b++)
        c->seq_lens[b] = random_int(0, p->kv_len, s);
    if (chance(s, 10))
        p->scale = (float)random_int(1, 50, s) / 100.0f;
    p->dtype = chance(s, 60) ? CLATTN_DTYPE_F32 : chance(s, 50) ? CLATTN_DTYPE_F16 : CLATTN_DTYPE_BF16;
}

/* Tiles of either variant within the kernels' ranges; the plan clamps them to the device and the
 * problem (and runs an option the device lacks as 0). */
static void draw_tiles(unsigned long long *s, random_case *c)
{
    static const int blocks[] = {1, 2, 3, 4, 8};
    static const int kws[] = {8, 16, 32};
    static const int split_bn[] = {1, 4, 8, 16, 32, 64};
    const int kind = random_int(1, 100, s);
    c->forced = kind > 15;
    clattn_tiles *t = &c->tiles;
    if (kind <= 15)
        return;
    if (kind <= 50) {
        *t = (clattn_tiles){.cpu_variant = 1,
                            .rows = random_int(1, 8, s),
                            .kw = PICK(s, kws),
                            .item_tiles = random_int(0, 32, s),
                            .lanes = random_int(0, 1, s)};
        return;
    }
    do {
        t->tm = PICK(s, blocks);
        t->tn = PICK(s, blocks);
        t->bm = t->tm * random_int(1, 16, s);
        t->bn = t->tn * random_int(1, 16, s);
    } while (t->tm * t->tn > 16 || t->bm > 128 || t->bn > 32 || (t->bm / t->tm) * (t->bn / t->tn) > 256);
    t->rows = 1;
    t->reqd_wg = random_int(0, 1, s);
    t->stage = random_int(0, 8, s);
    t->shuffle = chance(s, 50) ? 2 : 0;
    t->mma = chance(s, 33) ? 2 : 0;
    t->direct = chance(s, 20);
    if (chance(s, 50)) {
        c->split.bn = PICK(s, split_bn);
        c->split.wg = c->split.bn * random_int(1, 8, s);
        c->split.rb = random_int(1, 16, s);
        c->split.groups_per_cu = random_int(1, 8, s);
    }
}

static void describe(const random_case *c, char *buf, size_t size)
{
    const clattn_problem *p = &c->p;
    const clattn_tiles *t = &c->tiles;
    int n = snprintf(buf, size, "B=%d H=%d/%d Nq=%d Nk=%d D=%d/%d%s", p->batch, p->heads, p->kv_heads, p->q_len,
                     p->kv_len, p->head_dim, p->value_dim, harness_storage(p->dtype));
#define MORE(...) (n += snprintf(buf + n, size > (size_t)n ? size - (size_t)n : 0, __VA_ARGS__))
    if (p->grid_pattern)
        MORE(" grid %dx%d pattern %d (%dx%d d%d, window %d shift %d)", p->grid_h, p->grid_w, (int)p->grid_pattern,
             p->grid_kernel_h, p->grid_kernel_w, p->grid_dilation, p->grid_window_size, p->grid_shift);
    if (p->causal)
        MORE(" causal");
    if (p->window)
        MORE(" window %d,%d dil %d", p->window_left, p->window_right, p->dilation);
    if (p->num_global)
        MORE(" globals %d%s", p->num_global, p->global_qkv ? " qkv" : "");
    if (p->summary_block)
        MORE(" summary %d%s", p->summary_block, p->summary_tail ? " own" : "");
    if (p->extra_len)
        MORE(" extra %d", p->extra_len);
    if (c->padded)
        MORE(" lens %d,%d", c->seq_lens[0], p->batch > 1 ? c->seq_lens[1] : -1);
    if (!c->forced)
        MORE(" | table");
    else if (t->cpu_variant)
        MORE(" | cpu rows %d kw %d items %d lanes %d", t->rows, t->kw, t->item_tiles, t->lanes);
    else
        MORE(" | gpu %dx%d %dx%d wg %d stage %d sh %d mma %d direct %d", t->bm, t->bn, t->tm, t->tn, t->reqd_wg,
             t->stage, t->shuffle, t->mma, t->direct);
    if (c->split.wg)
        MORE(" split %d/%d/%d/%d", c->split.wg, c->split.bn, c->split.rb, c->split.groups_per_cu);
#undef MORE
}

static void run_device(clattn_context *dev, clattn_context *ref, const char *variant, size_t index)
{
    (void)variant;
    (void)index;
    const clattn_split_tiles defaults = {0};
    for (int i = 0; i < cases; i++) {
        unsigned long long s = seed * 1000003ull + (unsigned long long)i;
        random_case c = {.p = {0}};
        draw_problem(&s, i, &c);
        draw_tiles(&s, &c);
        clattn_context_force_tiles(dev, c.forced ? &c.tiles : NULL);
        clattn_context_force_split_tiles(dev, &c.split);
        double err = 0.0;
        const int status = harness_compare(dev, ref, &c.p, c.padded ? c.seq_lens : NULL, 1, &err);
        char what[512];
        describe(&c, what, sizeof what);
        check(status == CLATTN_STATUS_OK && err <= TOLERANCE, "seed %llu case %d: %s: max err %.2e %s", seed, i, what,
              err, status ? clattn_status_string(status) : "");
    }
    clattn_context_force_tiles(dev, NULL);
    clattn_context_force_split_tiles(dev, &defaults);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        seed = strtoull(argv[1], NULL, 10);
    if (argc > 2)
        cases = atoi(argv[2]);
    return harness_each_variant(NULL, NULL, 0, run_device);
}

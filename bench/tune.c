/* `clattn tune`: times every candidate tile shape of the device's kind (CPU-variant shapes on a
 * CPU, GPU-variant tiles elsewhere) on the first --device for the first pattern and the largest
 * length (with the bench's runs), then the best CPU shape's tiles per work-item,
 * prints the winner as a row for the table in host/tuning.c, and with --save stores it in the
 * cache directory for this device and driver. Decode on a GPU tunes the split over the keys
 * instead (its sizes are printed for host/tuning.h, not saved); the 2-D patterns are timed on the
 * GPU variant alone and never saved. Declared in bench.h beside bench_main. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "clattn_advanced.h"
#include "exit_status.h"
#include "options.h"
#include "report.h"
#include "runs.h"
#include "timing.h"
#include "workload.h"

/* The CPU variant's tile: `rows` query rows by `kw` keys per score vector. */
#define CPU_TILES(rows_, kw_)                                                                                          \
    {                                                                                                                  \
        .cpu_variant = 1, .rows = rows_, .kw = kw_                                                                     \
    }
/* The GPU variant's tile: work-groups of `bm` query rows walking tiles of `bn` keys, each
 * work-item a `tm` x `tn` block of scores, staging K and V `stage` loads at a time, or loading them
 * a step ahead (`prefetch`) into registers or by asynchronous copies (`async`), rows' maxima and
 * sums combined through __local or by warp shuffles (`shuffle`), products on tensor cores (`mma`:
 * then tm x tn is what runs where the device has none). Shuffles, asynchronous copies and tensor
 * cores are NVIDIA's GPUs': elsewhere those candidates run as the ones without. DIRECT_CANDIDATE:
 * K and V not staged, read where they lie (`direct`). LARGE_GRF_CANDIDATE: Intel's large register
 * file (`large_grf`; elsewhere as without). */
#define GPU_CANDIDATE(bm_, bn_, tm_, tn_, stage_, prefetch_, shuffle_, mma_, async_)                                   \
    {                                                                                                                  \
        .cpu_variant = 0, .rows = 1, .bm = bm_, .bn = bn_, .tm = tm_, .tn = tn_, .reqd_wg = 1, .stage = stage_,        \
        .prefetch = prefetch_, .shuffle = shuffle_, .mma = mma_, .async = async_                                       \
    }
#define DIRECT_CANDIDATE(bm_, bn_, tm_, tn_, shuffle_)                                                                 \
    {                                                                                                                  \
        .cpu_variant = 0, .rows = 1, .bm = bm_, .bn = bn_, .tm = tm_, .tn = tn_, .reqd_wg = 1, .shuffle = shuffle_,    \
        .direct = 1                                                                                                    \
    }
#define LARGE_GRF_CANDIDATE(bm_, bn_, tm_, tn_)                                                                        \
    {                                                                                                                  \
        .cpu_variant = 0, .rows = 1, .bm = bm_, .bn = bn_, .tm = tm_, .tn = tn_, .reqd_wg = 1, .large_grf = 1          \
    }

/* The tile spaces searched: CPU-variant (rows, score width) pairs on CPU devices (10 to 16 rows
 * only fit the 32 registers of AVX-512), GPU-variant tiles elsewhere: work-groups of 64 to 256
 * work-items, register blocks from 2 x 2 (small register files) to 8 x 4. The library still
 * shrinks each to the device's limits. 64 x 16 in 2 x 4 blocks is the only 64-row tile at D = 128
 * within NVIDIA's 48 KB of __local (48,388 bytes); every other one there shrinks to 32 rows. The
 * five after them are NVIDIA's rows and the best of the others with warp shuffles (with
 * `prefetch`, a key tile then has two barriers instead of three); the seven after those run on
 * tensor cores (3xTF32), four warps of 16 rows by 32 keys, by 64 and by 16, with K and V a step
 * ahead, with the rows combined through __local, and two warps by 32 and by 16 keys (at D = 128
 * the one whose __local takes Q's small parts too, and that spills nothing in clang's sm_90
 * build). The last four load K and V a step ahead by asynchronous copies (NVIDIA's cp.async;
 * elsewhere through registers): NVIDIA's rows at D = 64 and 128 with warp shuffles, on float32
 * multiply-adds and on tensor cores. The last four read K and V where they lie (`direct`): ARM
 * Mali's row, the same blocks in 32-key tiles, 2 x 4 blocks (Intel's and Adreno's), and NVIDIA's
 * row at D = 64 with warp shuffles. The last three take Intel's large register file, for blocks
 * larger than the Intel row's 2 x 4: 4 x 4 in 32 x 32 and 64 x 32 tiles, 4 x 8 in 64 x 32. */
static const clattn_tiles cpu_candidates[] = {
    CPU_TILES(4, 8),  CPU_TILES(6, 8),  CPU_TILES(8, 8),   CPU_TILES(12, 8),  CPU_TILES(4, 16),
    CPU_TILES(6, 16), CPU_TILES(8, 16), CPU_TILES(10, 16), CPU_TILES(12, 16), CPU_TILES(16, 16),
    CPU_TILES(4, 32), CPU_TILES(6, 32), CPU_TILES(8, 32),  CPU_TILES(10, 32), CPU_TILES(12, 32),
};
static const clattn_tiles gpu_candidates[] = {
    GPU_CANDIDATE(64, 32, 4, 4, 8, 0, 0, 0, 0),  GPU_CANDIDATE(64, 32, 4, 4, 4, 0, 0, 0, 0),
    GPU_CANDIDATE(64, 32, 4, 4, 0, 0, 0, 0, 0),  GPU_CANDIDATE(64, 32, 4, 4, 8, 1, 0, 0, 0),
    GPU_CANDIDATE(32, 32, 4, 4, 8, 0, 0, 0, 0),  GPU_CANDIDATE(32, 32, 4, 4, 0, 0, 0, 0, 0),
    GPU_CANDIDATE(32, 32, 4, 4, 8, 1, 0, 0, 0),  GPU_CANDIDATE(64, 64, 4, 8, 8, 0, 0, 0, 0),
    GPU_CANDIDATE(128, 32, 8, 4, 8, 0, 0, 0, 0), GPU_CANDIDATE(128, 32, 4, 4, 8, 0, 0, 0, 0),
    GPU_CANDIDATE(128, 32, 4, 4, 0, 0, 0, 0, 0), GPU_CANDIDATE(64, 64, 4, 4, 8, 0, 0, 0, 0),
    GPU_CANDIDATE(64, 16, 4, 2, 8, 0, 0, 0, 0),  GPU_CANDIDATE(64, 16, 4, 2, 8, 1, 0, 0, 0),
    GPU_CANDIDATE(32, 32, 2, 4, 8, 0, 0, 0, 0),  GPU_CANDIDATE(64, 32, 2, 4, 8, 0, 0, 0, 0),
    GPU_CANDIDATE(32, 16, 2, 2, 8, 0, 0, 0, 0),  GPU_CANDIDATE(128, 64, 8, 4, 8, 0, 0, 0, 0),
    GPU_CANDIDATE(64, 32, 8, 4, 8, 0, 0, 0, 0),  GPU_CANDIDATE(64, 32, 8, 4, 2, 0, 0, 0, 0),
    GPU_CANDIDATE(64, 32, 8, 4, 0, 0, 0, 0, 0),  GPU_CANDIDATE(64, 32, 8, 4, 8, 1, 0, 0, 0),
    GPU_CANDIDATE(64, 32, 4, 8, 8, 0, 0, 0, 0),  GPU_CANDIDATE(64, 32, 4, 8, 0, 0, 0, 0, 0),
    GPU_CANDIDATE(64, 32, 4, 4, 2, 0, 0, 0, 0),  GPU_CANDIDATE(64, 16, 2, 4, 8, 0, 0, 0, 0),
    GPU_CANDIDATE(64, 16, 2, 4, 0, 0, 0, 0, 0),  GPU_CANDIDATE(64, 32, 4, 4, 8, 0, 1, 0, 0),
    GPU_CANDIDATE(64, 32, 4, 8, 8, 0, 1, 0, 0),  GPU_CANDIDATE(32, 32, 4, 4, 8, 1, 1, 0, 0),
    GPU_CANDIDATE(64, 32, 4, 8, 8, 1, 1, 0, 0),  GPU_CANDIDATE(64, 16, 2, 4, 8, 0, 1, 0, 0),
    GPU_CANDIDATE(64, 32, 4, 8, 8, 0, 1, 1, 0),  GPU_CANDIDATE(64, 64, 4, 8, 8, 0, 1, 1, 0),
    GPU_CANDIDATE(64, 16, 4, 4, 8, 0, 1, 1, 0),  GPU_CANDIDATE(64, 32, 4, 8, 8, 1, 1, 1, 0),
    GPU_CANDIDATE(64, 32, 4, 8, 8, 0, 0, 1, 0),  GPU_CANDIDATE(32, 32, 4, 8, 8, 0, 1, 1, 0),
    GPU_CANDIDATE(32, 16, 4, 4, 8, 0, 1, 1, 0),  GPU_CANDIDATE(64, 32, 4, 8, 8, 1, 1, 0, 1),
    GPU_CANDIDATE(32, 32, 4, 4, 8, 1, 1, 0, 1),  GPU_CANDIDATE(64, 32, 4, 8, 8, 1, 1, 1, 1),
    GPU_CANDIDATE(32, 16, 4, 4, 8, 1, 1, 1, 1),  DIRECT_CANDIDATE(32, 16, 2, 2, 0),
    DIRECT_CANDIDATE(32, 32, 2, 2, 0),           DIRECT_CANDIDATE(32, 32, 2, 4, 0),
    DIRECT_CANDIDATE(64, 32, 4, 8, 1),           LARGE_GRF_CANDIDATE(32, 32, 4, 4),
    LARGE_GRF_CANDIDATE(64, 32, 4, 4),           LARGE_GRF_CANDIDATE(64, 32, 4, 8),
};

_Static_assert(sizeof cpu_candidates <= sizeof gpu_candidates, "tune_device's ran[] holds the GPU space");

/* The GPU split's sizes tried for decode on a GPU (cl/decode_gpu.cl): work-items per work-group,
 * keys per __local tile, rows per block (0: the default, the whole query group up to 8) and the
 * work-groups per compute unit that the split aims for. The first is the default. */
static const clattn_split_tiles split_candidates[] = {
    {128, 32, 0, 4},  {128, 32, 0, 8}, {128, 32, 0, 16}, {128, 32, 0, 32}, {128, 16, 0, 8}, {128, 16, 0, 16},
    {128, 16, 0, 32}, {64, 16, 0, 16}, {64, 16, 0, 32},  {64, 8, 0, 32},   {256, 32, 0, 8}, {256, 64, 0, 8},
};

/* Tiles per work-item tried for the best CPU-variant shape: the blocking, timed once the shape is
 * known rather than multiplied into the whole space. The default, 32, is timed again beside the
 * others and the four decide among themselves, so that they meet the machine in the same state.
 * (A narrow window's launch takes at most CLATTN_BAND_ITEM_TILES of them whatever is saved.) */
static const int tune_item_tiles[] = {4, 8, 16, 32};

/* The winner in host/tuning.c's designated-initialiser form, ready to paste. */
static void print_row(const char *device, const clattn_tiles *t, double ms)
{
    if (t->cpu_variant)
        printf("best: {.device = \"%s\", .vendor = NULL, .type = CL_DEVICE_TYPE_ALL, .tiles = {.cpu_variant = 1, "
               ".rows = %d, .kw = %d, .item_tiles = %d, .lanes = %d}},  /* %.3f ms */\n",
               device, t->rows, t->kw, t->item_tiles, t->lanes, ms);
    else
        printf(
            "best: {.device = \"%s\", .vendor = NULL, .type = CL_DEVICE_TYPE_ALL, .tiles = GPU_TILES(%d, %d, %d, %d, "
            "%d, %d, %d, %d, %d, %d, %d, %d)},  /* %.3f ms */\n",
            device, t->bm, t->bn, t->tm, t->tn, t->reqd_wg, t->stage, t->prefetch, t->shuffle, t->mma, t->async,
            t->direct, t->large_grf, ms);
}

/* A candidate's line up to its results: the tiles asked for. */
static void print_candidate(const clattn_tiles *t)
{
    if (t->cpu_variant)
        printf("  cpu rows=%-2d kw=%-2d it=%d", t->rows, t->kw, t->item_tiles);
    else
        printf("  gpu bm=%-3d bn=%-3d tm=%d tn=%d stage=%d prefetch=%d shuffle=%d mma=%d async=%d direct=%d "
               "large_grf=%d",
               t->bm, t->bn, t->tm, t->tn, t->stage, t->prefetch, t->shuffle, t->mma, t->async, t->direct,
               t->large_grf);
}

/* The tiles a plan of w runs with t forced, in *ran: the library adapts them to the device (an
 * option the device lacks runs as 0, tiles shrink to fit its limits). 0, or an exit status with
 * the error printed; the plan's program stays cached for the timed runs that follow. */
static int planned_tiles(bench_device *dev, const workload *w, const clattn_tiles *t, clattn_tiles *ran)
{
    clattn_plan *plan = NULL;
    clattn_context_force_tiles(dev->ctx, t);
    const int status = clattn_plan_create(dev->ctx, &w->problem, &plan);
    if (!status)
        clattn_plan_tiles(plan, ran);
    clattn_plan_free(plan);
    clattn_context_force_tiles(dev->ctx, NULL);
    return status ? runtime_error(dev, "clattn_plan_create", status) : 0;
}

/* Times w's plan with whatever the context forces (row), its last output left in w->out, and on
 * success leaves in *ran a plan of the same problem, to read the sizes that ran (the library may
 * have shrunk forced ones to fit): its program is cached, so no second compile. */
static int time_forced(const bench_timer *timer, bench_device *dev, const workload *w, bench_row *row,
                       clattn_plan **ran)
{
    row_init(row, 0, dev->label, w);
    *ran = NULL;
    const int status = run_plan(timer, dev, w, 1, row);
    if (!status)
        clattn_plan_create(dev->ctx, &w->problem, ran);
    return status;
}

/* Whether the candidate just timed computed what the plan the library makes itself computed
 * (`want`): a candidate that differs is printed as such and never wins, whatever its time (tiles
 * that ran wrong on a device, such as tensor cores or asynchronous copies met there for the first
 * time). */
static int ran_right(const workload *w, const void *want)
{
    double err;
    size_t at;
    if (!workload_outputs_differ(w, w->out, want, &err, &at))
        return 1;
    printf("    differs from the library's own plan: max |O - O_plan| %.3g at element %zu; left out\n", err, at);
    return 0;
}

/* Times w's plan with tiles t forced, which planned_tiles said it runs as `used`; prints the
 * candidate's line, and keeps it in *best when it is faster than *best_ms and computed what `want`
 * holds. */
static int time_candidate(const bench_timer *timer, bench_device *dev, const workload *w, const void *want,
                          const clattn_tiles *t, const clattn_tiles *used, clattn_tiles *best, double *best_ms)
{
    bench_row row;
    row_init(&row, 0, dev->label, w);
    clattn_context_force_tiles(dev->ctx, t);
    const int status = run_plan(timer, dev, w, 1, &row);
    clattn_context_force_tiles(dev->ctx, NULL);
    if (status)
        return status;
    const double ms = row.time.ms_median;
    print_candidate(t);
    if (!t->cpu_variant)
        printf(" (ran %dx%d, shuffle %d, mma %d, async %d, large_grf %d)", used->bm, used->bn, used->shuffle, used->mma,
               used->async, used->large_grf);
    printf("  %9.3f ms  %7.1f GFLOP/s\n", ms, giga_per_second(w->flops, ms));
    if (ran_right(w, want) && ms < *best_ms) {
        *best_ms = ms;
        *best = *t;
        best->shuffle = used->shuffle; /* asked for where the device has none, it ran without */
        best->mma = used->mma;
        best->async = used->async;
        best->large_grf = used->large_grf;
    }
    fflush(stdout); /* each line as it comes: a tune cut short by a timeout keeps what it measured */
    return 0;
}

/* Times w's plan with split sizes s forced (decode on the GPU variant); prints the candidate's
 * line, and keeps it in *best when it is faster than *best_ms and computed what `want` holds. */
static int time_split(const bench_timer *timer, bench_device *dev, const workload *w, const void *want,
                      const clattn_split_tiles *s, clattn_split_tiles *best, double *best_ms)
{
    bench_row row;
    clattn_plan *plan = NULL;
    clattn_context_force_split_tiles(dev->ctx, s);
    const int status = time_forced(timer, dev, w, &row, &plan);
    clattn_split_tiles used = {0};
    if (plan != NULL)
        clattn_plan_split_tiles(plan, &used);
    clattn_plan_free(plan);
    clattn_context_force_split_tiles(dev->ctx, NULL);
    if (status)
        return status;
    const double ms = row.time.ms_median;
    printf("  split wg=%-3d bn=%-2d rb=%-2d groups/cu=%-2d (ran %d %d %d)  %9.3f ms  %7.1f GB/s\n", s->wg, s->bn, s->rb,
           s->groups_per_cu, used.wg, used.bn, used.rb, ms, giga_per_second((double)row.bytes, ms));
    if (ran_right(w, want) && ms < *best_ms) {
        *best_ms = ms;
        *best = *s;
    }
    fflush(stdout);
    return 0;
}

/* No candidate computed what the library's own plan computes: nothing to keep. */
static int none_right(const bench_device *dev)
{
    fprintf(stderr, "clattn tune: on %s no candidate computed what the library's own plan computes\n", dev->label);
    return EXIT_RUNTIME;
}

/* The output of w's plan as the library makes it (its tile table, saved tiles and knobs, nothing
 * forced), which every candidate must reproduce, into *want (malloc'd; the caller frees it). */
static int plan_output(const bench_timer *timer, bench_device *dev, const workload *w, void **want)
{
    bench_row row;
    row_init(&row, 0, dev->label, w);
    *want = malloc(w->q_bytes);
    if (*want == NULL) {
        fprintf(stderr, "clattn tune: out of memory for the plan's output (%zu bytes)\n", w->q_bytes);
        return EXIT_RUNTIME;
    }
    const int status = run_plan(timer, dev, w, 1, &row);
    if (!status) {
        memcpy(*want, w->out, w->q_bytes);
        printf("  the library's own plan  %9.3f ms (every candidate must compute what it computes)\n",
               row.time.ms_median);
    }
    return status;
}

/* Decode on a GPU-variant plan: the split's sizes, printed as host/tuning.h's defaults. */
static int tune_split(const bench_timer *timer, bench_device *dev, const workload *w, const void *want)
{
    clattn_split_tiles best = split_candidates[0];
    double best_ms = INFINITY;
    int status = 0;
    for (size_t c = 0; c < sizeof split_candidates / sizeof split_candidates[0] && !status; c++)
        status = time_split(timer, dev, w, want, &split_candidates[c], &best, &best_ms);
    if (!status && best_ms == INFINITY)
        status = none_right(dev);
    if (!status)
        printf("best split: CLATTN_SPLIT_GPU_WG %d, CLATTN_SPLIT_GPU_BN %d, CLATTN_SPLIT_GPU_MAX_RB %s, "
               "CLATTN_SPLIT_GPU_GROUPS_PER_CU %d  /* %.3f ms */\n",
               best.wg, best.bn, best.rb != 0 ? "as forced" : "the default", best.groups_per_cu, best_ms);
    return status;
}

/* The pattern tuned: the first of --pattern. */
static pattern_id tuned_pattern(const bench_options *o)
{
    pattern_id pattern = PATTERN_DENSE;
    while (!o->patterns[pattern])
        pattern++;
    return pattern;
}

/* The space to search is what the library runs for w on dev (its tile table, saved tiles and the
 * CLATTN_VARIANT knob decide, as for any plan): *cpu when the CPU variant's tiles, *lanes their
 * choice of kernel for narrow windows (kept by every candidate: the tune times one pattern),
 * *split when decode takes the GPU split over the keys (it runs no attention tiles then). */
static int planned_space(bench_device *dev, const workload *w, pattern_id pattern, int *cpu, int *lanes, int *split)
{
    clattn_plan *plan = NULL;
    const int status = clattn_plan_create(dev->ctx, &w->problem, &plan);
    if (status)
        return runtime_error(dev, "creating the plan", status);
    clattn_tiles t = {0};
    clattn_split_tiles s = {0};
    clattn_plan_tiles(plan, &t);
    *cpu = t.cpu_variant;
    *lanes = t.lanes;
    *split = pattern == PATTERN_DECODE && clattn_plan_split_tiles(plan, &s) == CLATTN_STATUS_OK;
    clattn_plan_free(plan);
    return 0;
}

/* The tile shapes at the default blocking, then the blocking of the best CPU-variant shape; the
 * split's sizes instead for decode on the GPU variant (and *best is left as it was). A 2-D pattern
 * on the CPU variant is refused: its neighborhood kernel (two queries at a time) and its regions
 * kernel (Swin, axial and criss-cross, a region's queries in vector lanes) take their shape from
 * the pattern and the device's vector width alone, so the candidates would time one kernel again
 * and again and crown the noise; only the packed tiles of patterns that fit neither read the
 * tiles' rows, as a bound on a tile's queries. */
static int tune_device(const bench_options *o, const bench_timer *timer, bench_device *dev, clattn_tiles *best)
{
    const pattern_id pattern = tuned_pattern(o);
    workload w;
    int status = workload_create(o, pattern, o->lengths[o->num_lengths - 1], &w);
    if (status)
        return status;
    int cpu = 1, lanes = 0, split = 0;
    status = planned_space(dev, &w, pattern, &cpu, &lanes, &split);
    if (!status && cpu && pattern_is_grid(pattern)) {
        fprintf(stderr,
                "clattn tune: on %s the CPU variant's 2-D kernels take their blocks from the pattern, not from "
                "the tiles tuned here (--pattern %s): clattn bench measures them\n",
                dev->label, pattern_names[pattern]);
        status = EXIT_USAGE;
    }
    if (!status && split && o->save) {
        fprintf(stderr, "clattn tune: --save keeps attention tiles; decode's split sizes are printed for "
                        "host/tuning.h\n");
        status = EXIT_USAGE;
    }
    if (!status)
        printf("tuning %s: %s, B=%d H=%d Hkv=%d N=%d D=%d\n", dev->label, pattern_names[pattern], o->batch, o->heads,
               o->kv_heads, w.n, o->head_dim);
    void *want = NULL;
    if (!status)
        status = plan_output(timer, dev, &w, &want);
    if (status || split) {
        status = status ? status : tune_split(timer, dev, &w, want);
        free(want);
        workload_free(&w);
        return status;
    }
    double best_ms = INFINITY;
    const clattn_tiles *candidates = cpu ? cpu_candidates : gpu_candidates;
    const size_t count =
        cpu ? sizeof cpu_candidates / sizeof cpu_candidates[0] : sizeof gpu_candidates / sizeof gpu_candidates[0];
    /* What each candidate timed so far ran as: one that runs here as an earlier one did (a vendor's
     * option this device lacks, tiles shrunk to the same fit) is not timed again. */
    clattn_tiles ran[sizeof gpu_candidates / sizeof gpu_candidates[0]];
    size_t nran = 0;
    for (size_t c = 0; c < count && !status; c++) {
        clattn_tiles t = candidates[c], runs;
        t.lanes = lanes; /* the narrow windows' kernel as the plan has it (GPU tiles ignore it) */
        if ((status = planned_tiles(dev, &w, &t, &runs)) != 0)
            break;
        size_t earlier = 0;
        while (earlier < nran && memcmp(&ran[earlier], &runs, sizeof runs) != 0)
            earlier++;
        if (earlier < nran) {
            print_candidate(&t);
            printf("  runs here as an earlier candidate: skipped\n");
            continue;
        }
        ran[nran++] = runs;
        status = time_candidate(timer, dev, &w, want, &t, &runs, best, &best_ms);
    }
    if (!status && best_ms == INFINITY)
        status = none_right(dev);
    const clattn_tiles shape = *best;
    if (shape.cpu_variant)
        best_ms = INFINITY; /* the blocking's three runs decide among themselves */
    for (size_t i = 0; i < sizeof tune_item_tiles / sizeof tune_item_tiles[0] && shape.cpu_variant && !status; i++) {
        clattn_tiles t = shape, runs;
        t.item_tiles = tune_item_tiles[i];
        status = planned_tiles(dev, &w, &t, &runs);
        if (!status)
            status = time_candidate(timer, dev, &w, want, &t, &runs, best, &best_ms);
    }
    if (!status && best_ms == INFINITY)
        status = none_right(dev);
    if (!status)
        print_row(dev->label, best, best_ms);
    free(want);
    workload_free(&w);
    return status;
}

/* --save: the winner into the cache directory, for the plans of this device and driver. */
static int save_tiles(bench_device *dev, const clattn_tiles *best)
{
    char path[4096];
    const int status = clattn_context_save_tiles(dev->ctx, best, path, sizeof path);
    if (status)
        return runtime_error(dev, "saving the tiles", status);
    printf("saved: %s (plans on this device and driver now use these tiles)\n", path);
    return 0;
}

int tune_main(int argc, char **argv)
{
    bench_options o;
    int status = options_parse(argc, argv, &o);
    if (status)
        return status < 0 ? 0 : status;
    /* The saved tiles shape every plan of the device: dense, causal and windows run on the
     * attention kernels they size, the GPU variant's 2-D kernel takes only their work-group rows
     * and key tile, and the CPU variant's 2-D kernels none of them. */
    const pattern_id pattern = tuned_pattern(&o);
    if (o.save && pattern_is_grid(pattern)) {
        fprintf(stderr,
                "clattn tune: --save keeps the tiles of every plan on the device, which a 2-D pattern's "
                "timings (--pattern %s) do not decide: tune a 1-D pattern to save\n",
                pattern_names[pattern]);
        return EXIT_USAGE;
    }
    if (o.rounds > 1) {
        fprintf(stderr,
                "clattn tune: --rounds: only clattn bench runs its sweep in rounds (see clattn bench --help)\n");
        return EXIT_USAGE;
    }
    /* the first --device, else the default device ("") */
    bench_device dev = {0};
    bench_timer timer;
    clattn_tiles best = {0};
    status = timer_init(&timer, o.warmup, o.repeat);
    if (!status)
        status = device_open(o.num_devices > 0 ? o.devices[0] : "", o.cache_dir, &dev);
    if (!status && clattn_context_is_reference(dev.ctx)) {
        fprintf(stderr, "clattn tune: the reference path has no tiles to tune\n");
        status = EXIT_USAGE;
    }
    if (!status && o.save && clattn_context_cache_dir(dev.ctx) == NULL) {
        fprintf(stderr, "clattn tune: --save needs a cache directory: --cache-dir DIR or $CLATTN_CACHE_DIR\n");
        status = EXIT_USAGE;
    }
    if (!status)
        status = tune_device(&o, &timer, &dev, &best);
    if (!status && o.save)
        status = save_tiles(&dev, &best);
    clattn_context_free(dev.ctx);
    timer_free(&timer);
    return status;
}

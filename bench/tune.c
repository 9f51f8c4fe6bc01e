/* `clattn tune`: times every candidate tile shape on the first --device for the first pattern
 * and the largest length (with the bench's runs), then the best CPU shape's tiles per work-item,
 * prints the winner as a row for the table in host/tuning.c, and with --save stores it in the
 * cache directory for this device and driver. Declared in bench.h beside bench_main. */
#include <math.h>
#include <stdio.h>

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
        .cpu_variant = 1, .rows = rows_, .wg = 1, .bk = 1, .kw = kw_                                                   \
    }
/* The GPU variant's tile: a work-group of `wg` query rows, `bk` keys per __local tile. */
#define GPU_TILES(wg_, bk_)                                                                                            \
    {                                                                                                                  \
        .cpu_variant = 0, .rows = 1, .wg = wg_, .bk = bk_, .kw = 0                                                     \
    }

/* The tile space searched: CPU-variant (rows, score width) pairs (10 to 16 rows only fit the 32
 * registers of AVX-512) and GPU-variant (work-group, key tile) pairs; the library still clamps
 * each to the device's limits. */
static const clattn_tiles tune_candidates[] = {
    CPU_TILES(4, 8),   CPU_TILES(6, 8),   CPU_TILES(8, 8),    CPU_TILES(12, 8),   CPU_TILES(4, 16),  CPU_TILES(6, 16),
    CPU_TILES(8, 16),  CPU_TILES(10, 16), CPU_TILES(12, 16),  CPU_TILES(16, 16),  CPU_TILES(4, 32),  CPU_TILES(6, 32),
    CPU_TILES(8, 32),  CPU_TILES(10, 32), CPU_TILES(12, 32),  GPU_TILES(32, 16),  GPU_TILES(32, 32), GPU_TILES(64, 16),
    GPU_TILES(64, 32), GPU_TILES(64, 64), GPU_TILES(128, 32), GPU_TILES(128, 64),
};

/* Tiles per work-item tried for the best CPU-variant shape: the blocking, timed once the shape is
 * known rather than multiplied into the whole space. The default, 4, is timed again beside the
 * others and the three decide among themselves, so that they meet the machine in the same state. */
static const int tune_item_tiles[] = {2, 4, 8};

/* The winner in host/tuning.c's designated-initialiser form, ready to paste. */
static void print_row(const char *device, const clattn_tiles *t, double ms)
{
    printf("best: {.device = \"%s\", .vendor = NULL, .type = CL_DEVICE_TYPE_ALL, .tiles = {.cpu_variant = %d, "
           ".rows = %d, .wg = %d, .bk = %d, .kw = %d, .item_tiles = %d}},  /* %.3f ms */\n",
           device, t->cpu_variant, t->rows, t->wg, t->bk, t->kw, t->item_tiles, ms);
}

/* Times w's plan with tiles t forced; prints the candidate's line, and keeps it in *best when it
 * is faster than *best_ms. */
static int time_candidate(const bench_timer *timer, bench_device *dev, const workload *w, const clattn_tiles *t,
                          clattn_tiles *best, double *best_ms)
{
    bench_row row;
    row_init(&row, 0, dev->label, w);
    clattn_context_force_tiles(dev->ctx, t);
    const int status = run_plan(timer, dev, w, &row);
    clattn_context_force_tiles(dev->ctx, NULL);
    if (status)
        return status;
    const double ms = row.time.ms_median;
    printf("  %-5s rows=%-2d kw=%-2d it=%d wg=%-3d bk=%-2d  %9.3f ms  %7.1f GFLOP/s\n",
           t->cpu_variant ? "cpu" : "local", t->rows, t->kw, t->item_tiles, t->wg, t->bk, ms,
           giga_per_second(w->flops, ms));
    if (ms < *best_ms) {
        *best_ms = ms;
        *best = *t;
    }
    return 0;
}

/* The tile shapes at the default blocking, then the blocking of the best CPU-variant shape. */
static int tune_device(const bench_options *o, const bench_timer *timer, bench_device *dev, clattn_tiles *best)
{
    pattern_id pattern = PATTERN_DENSE;
    while (!o->patterns[pattern])
        pattern++;
    workload w;
    int status = workload_create(o, pattern, o->lengths[o->num_lengths - 1], &w);
    if (status)
        return status;
    double best_ms = INFINITY;
    printf("tuning %s: %s, B=%d H=%d Hkv=%d N=%d D=%d\n", dev->label, pattern_names[pattern], o->batch, o->heads,
           o->kv_heads, w.n, o->head_dim);
    for (size_t c = 0; c < sizeof tune_candidates / sizeof tune_candidates[0] && !status; c++)
        status = time_candidate(timer, dev, &w, &tune_candidates[c], best, &best_ms);
    const clattn_tiles shape = *best;
    if (shape.cpu_variant)
        best_ms = INFINITY; /* the blocking's three runs decide among themselves */
    for (size_t i = 0; i < sizeof tune_item_tiles / sizeof tune_item_tiles[0] && shape.cpu_variant && !status; i++) {
        clattn_tiles t = shape;
        t.item_tiles = tune_item_tiles[i];
        status = time_candidate(timer, dev, &w, &t, best, &best_ms);
    }
    if (!status)
        print_row(dev->label, best, best_ms);
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

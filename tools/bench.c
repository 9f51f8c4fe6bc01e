/* `clattn bench`: times each pattern and sequence length on OpenCL devices (profiling events),
 * the reference path and an unfused OpenBLAS baseline, against each device's measured FMA
 * peak, and writes a table, JSON lines, CSV or an SVG plot. */
#define _POSIX_C_SOURCE 200809L

#include "bench.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clattn.h"
#include "context.h"
#include "exit_status.h"
#include "program.h"

#ifdef CLATTN_HAVE_OPENBLAS
#include <cblas.h>
#endif

#define MAX_DEVICES 16
#define MAX_LENGTHS 32
#define REFERENCE_MAX_N 2048 /* the double-precision host path takes seconds per run beyond */
#define BASELINE_MAX_N 8192  /* the baseline holds an N x N score matrix */
#define PEAK_TARGET_MS 50.0  /* shorter probe launches measure launch overhead, not FMAs */
#define PEAK_MAX_ITERS (1 << 24)
#define PEAK_ITEMS_PER_CU 2048         /* work-items: enough to fill a GPU core, many groups on a CPU */
#define COPY_BYTES ((size_t)256 << 20) /* far beyond the caches of CPUs and GPUs */
#define COPY_RUNS 5
#define FIELD_SIZE 160

typedef enum {
    PATTERN_DENSE,
    PATTERN_CAUSAL,
    PATTERN_WINDOW,
    PATTERN_WINDOW_GLOBAL,
    PATTERN_WINDOW_SUMMARY,
    PATTERN_DECODE, /* one query row at the last position, causal: a step of generation */
    PATTERN_COUNT
} pattern_id;
static const char *const pattern_names[PATTERN_COUNT] = {"dense",         "causal",         "window",
                                                         "window-global", "window-summary", "decode"};

typedef enum { FORMAT_TABLE, FORMAT_JSON, FORMAT_CSV } output_format;

typedef struct {
    char devices[MAX_DEVICES][64]; /* specs as clattn_context_desc.device takes them */
    int num_devices;
    int patterns[PATTERN_COUNT]; /* nonzero: run this pattern */
    int lengths[MAX_LENGTHS];    /* ascending, no repeats, so that plotted series run left to right */
    int num_lengths;
    int batch, heads, kv_heads, head_dim, window, globals, summary_block, repeat, warmup;
    output_format format;
    const char *plot; /* SVG path, or NULL */
} bench_options;

typedef struct {
    clattn_context *ctx;
    char label[128];
    double peak_gflops; /* measured fp32 FMA peak; 0 on the reference path */
    double copy_gbps;   /* measured copy bandwidth (bytes read + written); 0 on the reference path */
} bench_device;

typedef struct {
    int device; /* index into the device list; the device count for the baseline */
    char label[128];
    pattern_id pattern;
    int n, window, globals;
    double plan_ms, ms_median, ms_min, ms_max, wall_ms, gflops, peak_gflops, pct_peak;
    double speedup; /* against the baseline of the same (pattern, N); 0: no baseline */
    size_t bytes;
    double gbps, copy_gbps, pct_copy; /* Q, K, V read and O written once, per second */
} bench_row;

typedef struct {
    const bench_options *o;
    bench_device devices[MAX_DEVICES];
    int num_devices;
    double *samples; /* [2 * repeat]: device times, then wall times */
    bench_row *rows;
    size_t num_rows, max_rows;
} bench_state;

/* One (pattern, N) point: the problem and its host inputs, shared by every device. */
typedef struct {
    clattn_problem problem;
    pattern_id pattern;
    int n, num_summary;
    int *global_idx;          /* [num_global], spread evenly over [0, N) */
    unsigned char *is_global; /* [N] */
    float *q, *k, *v, *out;   /* Q, O [B, H, Nq, D]; K, V [B, Hkv, N, D]; Nq = N, or 1 (decode) */
    size_t q_bytes, kv_bytes;
    double flops; /* 4 * D * (keys each query sees), summed over rows, heads and batch */
} workload;

/* ---- Arguments ------------------------------------------------------------------------------ */

static void usage(void)
{
    puts("usage: clattn bench [--device SPEC]... [--pattern LIST] [--n LIST] [--b B] [--h H] [--hkv HKV]\n"
         "                    [--d D] [--window W] [--globals G] [--summary-block S] [--repeat R]\n"
         "                    [--warmup W] [--json | --csv] [--plot FILE.svg]\n"
         "  --device   cpu, gpu, P:D or reference, repeatable (default: every OpenCL device, reference)\n"
         "  --pattern  dense, causal, window, window-global, window-summary, decode (default dense);\n"
         "             decode: one query row against N keys, causal\n"
         "  --n        sequence lengths (default 512,1024,2048)\n"
         "  defaults:  --b 1 --h 8 --hkv H --d 64 --window 256 (L = R = W) --globals 16\n"
         "             --summary-block 64 --repeat 10 --warmup 2");
}

static int usage_error(const char *flag, const char *value, const char *expected)
{
    fprintf(stderr, "clattn bench: %s '%s': %s (see clattn bench --help)\n", flag, value, expected);
    return EXIT_USAGE;
}

static int parse_int(const char *flag, const char *text, int min, int *out)
{
    char *end = NULL;
    errno = 0;
    const long value = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE || value < min || value > INT_MAX) {
        char expected[48];
        snprintf(expected, sizeof expected, "expected an integer >= %d", min);
        return usage_error(flag, text, expected);
    }
    *out = (int)value;
    return 0;
}

static int add_pattern(bench_options *o, const char *flag, const char *name)
{
    for (int p = 0; p < PATTERN_COUNT; p++)
        if (strcmp(name, pattern_names[p]) == 0) {
            o->patterns[p] = 1;
            return 0;
        }
    return usage_error(flag, name, "unknown pattern (dense, causal, window, window-global, window-summary, decode)");
}

static int add_length(bench_options *o, const char *flag, const char *text)
{
    int n, i = 0;
    const int status = parse_int(flag, text, 1, &n);
    while (!status && i < o->num_lengths && o->lengths[i] < n)
        i++;
    if (status || (i < o->num_lengths && o->lengths[i] == n))
        return status;
    if (o->num_lengths == MAX_LENGTHS)
        return usage_error(flag, text, "too many sequence lengths (at most 32)");
    memmove(o->lengths + i + 1, o->lengths + i, (size_t)(o->num_lengths - i) * sizeof o->lengths[0]);
    o->lengths[i] = n;
    o->num_lengths++;
    return 0;
}

typedef int (*item_parser)(bench_options *o, const char *flag, const char *item);

static int parse_list(bench_options *o, const char *flag, const char *list, item_parser parse)
{
    for (const char *p = list;; p++) { /* p++ steps over the comma */
        char item[32];
        const size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item)
            return usage_error(flag, list, "expected a comma-separated list without empty items");
        memcpy(item, p, len);
        item[len] = '\0';
        const int status = parse(o, flag, item);
        if (status || p[len] == '\0')
            return status;
        p += len;
    }
}

static int add_device(bench_options *o, const char *flag, const char *spec)
{
    if (o->num_devices == MAX_DEVICES)
        return usage_error(flag, spec, "too many devices (at most 16)");
    if (spec[0] == '\0' || strlen(spec) >= sizeof o->devices[0])
        return usage_error(flag, spec, "expected cpu, gpu, P:D or reference");
    strcpy(o->devices[o->num_devices++], spec);
    return 0;
}

/* A flag that takes a value; a missing value arrives as "" and fails like a bad one. */
static int parse_value(bench_options *o, const char *flag, const char *value)
{
    const struct {
        const char *flag;
        int *field;
        int min;
    } ints[] = {{"--b", &o->batch, 1},       {"--h", &o->heads, 1},       {"--hkv", &o->kv_heads, 1},
                {"--d", &o->head_dim, 1},    {"--window", &o->window, 0}, {"--globals", &o->globals, 0},
                {"--repeat", &o->repeat, 1}, {"--warmup", &o->warmup, 0}, {"--summary-block", &o->summary_block, 1}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (strcmp(flag, ints[i].flag) == 0)
            return parse_int(flag, value, ints[i].min, ints[i].field);
    if (strcmp(flag, "--device") == 0)
        return add_device(o, flag, value);
    if (strcmp(flag, "--pattern") == 0)
        return parse_list(o, flag, value, add_pattern);
    if (strcmp(flag, "--n") == 0)
        return parse_list(o, flag, value, add_length);
    if (strcmp(flag, "--plot") != 0)
        return usage_error("argument", flag, "unknown option");
    o->plot = value;
    return 0;
}

/* Returns 0, EXIT_USAGE, or -1 when --help was answered. Devices are filled in later. */
static int parse_args(int argc, char **argv, bench_options *o)
{
    static const int default_lengths[] = {512, 1024, 2048};
    *o = (bench_options){.batch = 1,
                         .heads = 8,
                         .head_dim = 64,
                         .window = 256,
                         .globals = 16,
                         .summary_block = 64,
                         .repeat = 10,
                         .warmup = 2,
                         .format = FORMAT_TABLE};
    for (int i = 1; i < argc; i++) {
        int status = 0;
        if (strcmp(argv[i], "--json") == 0)
            o->format = FORMAT_JSON;
        else if (strcmp(argv[i], "--csv") == 0)
            o->format = FORMAT_CSV;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return -1;
        } else {
            const char *flag = argv[i];
            status = parse_value(o, flag, i + 1 < argc ? argv[++i] : "");
        }
        if (status)
            return status;
    }
    if (o->kv_heads == 0)
        o->kv_heads = o->heads;
    if (o->heads % o->kv_heads != 0) {
        char text[16];
        snprintf(text, sizeof text, "%d", o->kv_heads);
        return usage_error("--hkv", text, "must divide --h");
    }
    if (o->num_lengths == 0) {
        memcpy(o->lengths, default_lengths, sizeof default_lengths);
        o->num_lengths = 3;
    }
    int any_pattern = 0;
    for (int p = 0; p < PATTERN_COUNT; p++)
        any_pattern |= o->patterns[p];
    o->patterns[PATTERN_DENSE] |= !any_pattern;
    return 0;
}

/* Every OpenCL device as "P:D" (its index among all devices of platform P), then reference. */
static void default_devices(bench_options *o)
{
    cl_platform_id platforms[MAX_DEVICES];
    cl_uint num_platforms = 0;
    if (clGetPlatformIDs(MAX_DEVICES, platforms, &num_platforms) != CL_SUCCESS)
        num_platforms = 0; /* no OpenCL at all: the reference path still runs */
    for (cl_uint p = 0; p < num_platforms && p < MAX_DEVICES; p++) {
        cl_uint num = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &num) != CL_SUCCESS)
            continue;
        for (cl_uint d = 0; d < num && o->num_devices < MAX_DEVICES - 1; d++)
            snprintf(o->devices[o->num_devices++], sizeof o->devices[0], "%u:%u", p, d);
    }
    strcpy(o->devices[o->num_devices++], "reference");
}

/* ---- Workloads and the keys each query sees ------------------------------------------------- */

/* A row's band [lo, hi] and the last key causality leaves it (SPEC.md 1-4; the bench uses
 * Nq == Nk, so row i sits at position i, and dilation 1). */
typedef struct {
    int lo, hi, last;
} row_band;

static row_band band_of(const workload *w, int row)
{
    const clattn_problem *p = &w->problem;
    const int last = p->causal ? row : w->n - 1;
    row_band b = {0, last, last};
    if (p->window && !w->is_global[row]) { /* a global row sees every key */
        b.lo = row - p->window_left > 0 ? row - p->window_left : 0;
        b.hi = row + p->window_right < last ? row + p->window_right : last;
    }
    return b;
}

static int summary_visible(const workload *w, int row, int block)
{
    const int end = (block + 1) * w->problem.summary_block;
    return !w->problem.causal || (end < w->n ? end : w->n) - 1 <= row;
}

/* The keys a row sees (the baseline's mask, key_visible, row by row): the band, the global
 * keys outside it, and the summary tokens. */
static long long visible_keys(const workload *w, int row)
{
    const row_band b = band_of(w, row);
    long long count = b.hi >= b.lo ? b.hi - b.lo + 1 : 0;
    for (int g = 0; g < w->problem.num_global; g++) {
        const int key = w->global_idx[g];
        count += key <= b.last && (key < b.lo || key > b.hi);
    }
    for (int c = 0; c < w->num_summary; c++)
        count += summary_visible(w, row, c);
    return count;
}

/* Uniform in (0, 1] (xorshift64), so that the logarithm below stays finite. */
static double uniform(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return ((double)(*state >> 11) + 1.0) / 9007199254740992.0;
}

/* Unit-normal floats (Box-Muller), the same for every device of a point. */
static void fill_normal(float *x, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        const double radius = sqrt(-2.0 * log(uniform(state)));
        x[i] = (float)(radius * cos(6.283185307179586 * uniform(state)));
    }
}

static void workload_free(workload *w)
{
    free(w->out);
    free(w->v);
    free(w->k);
    free(w->q);
    free(w->is_global);
    free(w->global_idx);
}

static int workload_create(const bench_options *o, pattern_id pattern, int n, workload *w)
{
    const int windowed = pattern >= PATTERN_WINDOW && pattern <= PATTERN_WINDOW_SUMMARY,
              block = pattern == PATTERN_WINDOW_SUMMARY ? o->summary_block : 0;
    const int globals = pattern == PATTERN_WINDOW_GLOBAL ? (o->globals < n ? o->globals : n) : 0;
    const int decode = pattern == PATTERN_DECODE, nq = decode ? 1 : n;
    *w = (workload){.pattern = pattern, .n = n, .num_summary = block > 0 ? (n + block - 1) / block : 0};
    w->problem = (clattn_problem){.batch = o->batch,
                                  .heads = o->heads,
                                  .kv_heads = o->kv_heads,
                                  .q_len = nq,
                                  .kv_len = n,
                                  .head_dim = o->head_dim,
                                  .causal = pattern == PATTERN_CAUSAL || decode,
                                  .window = windowed,
                                  .window_left = windowed ? o->window : 0,
                                  .window_right = windowed ? o->window : 0,
                                  .num_global = globals,
                                  .summary_block = block};
    w->q_bytes = (size_t)o->batch * o->heads * nq * o->head_dim * sizeof(float);
    w->kv_bytes = (size_t)o->batch * o->kv_heads * n * o->head_dim * sizeof(float);
    w->global_idx = malloc((size_t)(globals > 0 ? globals : 1) * sizeof(int));
    w->is_global = calloc((size_t)n, 1);
    w->q = malloc(w->q_bytes);
    w->k = malloc(w->kv_bytes);
    w->v = malloc(w->kv_bytes);
    w->out = malloc(w->q_bytes);
    if (!w->global_idx || !w->is_global || !w->q || !w->k || !w->v || !w->out) {
        workload_free(w);
        fprintf(stderr, "clattn bench: N = %d: out of host memory for the inputs\n", n);
        return EXIT_RUNTIME;
    }
    for (int g = 0; g < globals; g++) {
        w->global_idx[g] = (int)((long long)g * n / globals);
        w->is_global[w->global_idx[g]] = 1;
    }
    w->problem.global_idx = w->global_idx;
    uint64_t seed = 0x5eed;
    fill_normal(w->q, w->q_bytes / sizeof(float), &seed);
    fill_normal(w->k, w->kv_bytes / sizeof(float), &seed);
    fill_normal(w->v, w->kv_bytes / sizeof(float), &seed);
    long long keys = decode ? n : 0; /* the last position sees every key */
    for (int row = 0; row < n && !decode; row++)
        keys += visible_keys(w, row);
    w->flops = 4.0 * o->head_dim * (double)keys * o->batch * o->heads;
    return 0;
}

/* ---- Timing --------------------------------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int compare_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts the samples; returns the median and sets the extremes. */
static double summarize(double *samples, int n, double *min, double *max)
{
    qsort(samples, (size_t)n, sizeof *samples, compare_double);
    *min = samples[0];
    *max = samples[n - 1];
    return n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
}

/* From the start of `first` to the end of `last` (profiling events of one in-order queue). */
static cl_int event_span_ms(cl_event first, cl_event last, double *ms)
{
    cl_ulong start = 0, end = 0;
    cl_int rc = clGetEventProfilingInfo(first, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL);
    if (rc == CL_SUCCESS)
        rc = clGetEventProfilingInfo(last, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL);
    *ms = (double)(end - start) * 1e-6;
    return rc;
}

/* One blocking run; sets *device_ms when the device timed it, leaves it negative otherwise. */
typedef int (*run_fn)(void *state, double *device_ms);

/* Warm-up runs (first-launch compilation, uploads) are not timed; the wall clock covers what a
 * caller waits, and stands for the device time on the host paths. */
static int time_runs(bench_state *s, run_fn run, void *state, bench_row *row)
{
    const int warmup = s->o->warmup, repeat = s->o->repeat;
    double *device = s->samples, *wall = s->samples + repeat, min, max;
    for (int i = 0; i < warmup + repeat; i++) {
        double device_ms = -1.0;
        const double start = now_ms();
        const int status = run(state, &device_ms);
        const double elapsed = now_ms() - start;
        if (status)
            return status;
        if (i >= warmup) {
            device[i - warmup] = device_ms >= 0.0 ? device_ms : elapsed;
            wall[i - warmup] = elapsed;
        }
    }
    row->ms_median = summarize(device, repeat, &row->ms_min, &row->ms_max);
    row->wall_ms = summarize(wall, repeat, &min, &max);
    return 0;
}

/* The failing step with the library's detailed message (the bench stops at the first failure,
 * so a message in the context always belongs to this one). */
static int runtime_error(const char *device, const clattn_context *ctx, const char *step, int status)
{
    const char *detail = clattn_context_message(ctx);
    fprintf(stderr, "clattn bench: %s: %s failed: %s (%d)%s%s\n", device, step, clattn_status_string(status), status,
            detail[0] ? ": " : "", detail);
    return clattn_exit_status(status);
}

/* ---- The fp32 FMA peak (cl/peak.cl) --------------------------------------------------------- */

/* The best chain count differs by device: FMA latency times issue width independent registers
 * must be in flight. 16 float16 chains fill AVX-512's 32 registers (PERF-NOTES.md); on AVX2
 * (16 registers, a float16 is two) 4 to 6 chains do and 8 or more spill; GPUs hide latency
 * with many work-items of few chains. */
static const int peak_chains[] = {2, 4, 6, 8, 16};

/* `amount` (flops, bytes) per run at `ms` per run, in G per second; 0 for a run too short to time. */
static double giga_per_second(double amount, double ms)
{
    return ms > 0.0 ? amount / (ms * 1e6) : 0.0;
}

/* part as a percentage of whole; 0 where whole was not measured. */
static double percent(double part, double whole)
{
    return whole > 0.0 ? 100.0 * part / whole : 0.0;
}

/* Best time of `runs` launches of a probe over `global` work-items, after one untimed launch
 * (POCL compiles the work-group function at the first launch). */
static cl_int best_launch_ms(cl_command_queue queue, cl_kernel kernel, size_t global, int runs, double *best)
{
    cl_int rc = CL_SUCCESS;
    *best = HUGE_VAL;
    for (int i = 0; i <= runs && rc == CL_SUCCESS; i++) {
        cl_event done = NULL;
        double ms = HUGE_VAL;
        rc = clEnqueueNDRangeKernel(queue, kernel, 1, NULL, &global, NULL, 0, NULL, &done);
        if (rc == CL_SUCCESS)
            rc = clWaitForEvents(1, &done);
        if (rc == CL_SUCCESS)
            rc = event_span_ms(done, done, &ms);
        if (done != NULL)
            clReleaseEvent(done);
        if (i > 0 && ms < *best)
            *best = ms;
    }
    return rc;
}

/* Best of `runs` launches of the FMA probe built with `chains` and `iters`. */
static int peak_best_ms(clattn_context *ctx, int chains, int iters, int runs, double *best)
{
    char options[96];
    snprintf(options, sizeof options, "-cl-std=CL1.2 -DCLATTN_CHAINS=%d -DCLATTN_ITERS=%d", chains, iters);
    clattn__error err = {{0}};
    cl_program program = NULL;
    const int status = clattn__program_get(ctx, "peak", options, &program, &err);
    if (status)
        return clattn__context_report(ctx, status, &err);
    const size_t global = (size_t)ctx->caps.compute_units * PEAK_ITEMS_PER_CU;
    const float a = 0.999f, b = 0.001f; /* the chains converge to 1: no overflow, no denormals */
    cl_int rc;
    cl_mem out = NULL;
    cl_kernel kernel = clCreateKernel(program, "peak", &rc);
    if (rc == CL_SUCCESS)
        out = clCreateBuffer(ctx->cl, CL_MEM_WRITE_ONLY, global * sizeof(float), NULL, &rc);
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(kernel, 0, sizeof out, &out);
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(kernel, 1, sizeof a, &a);
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(kernel, 2, sizeof b, &b);
    if (rc == CL_SUCCESS)
        rc = best_launch_ms(ctx->queue, kernel, global, runs, best);
    if (out != NULL)
        clReleaseMemObject(out);
    if (kernel != NULL)
        clReleaseKernel(kernel);
    clReleaseProgram(program);
    return rc;
}

/* The best over peak_chains. ITERS doubles until a launch takes PEAK_TARGET_MS; powers of two
 * let the program caches (clattn's and the driver's) serve later runs too. */
static int measure_peak(bench_device *dev)
{
    const double items = (double)dev->ctx->caps.compute_units * PEAK_ITEMS_PER_CU;
    int status = 0;
    for (size_t c = 0; c < sizeof peak_chains / sizeof peak_chains[0] && !status; c++) {
        int iters = 256;
        double ms = 0.0;
        status = peak_best_ms(dev->ctx, peak_chains[c], iters, 1, &ms);
        while (!status && ms < PEAK_TARGET_MS && iters < PEAK_MAX_ITERS) {
            while (ms < PEAK_TARGET_MS && iters < PEAK_MAX_ITERS) {
                iters *= 2;
                ms *= 2.0; /* the launch time is proportional to ITERS */
            }
            status = peak_best_ms(dev->ctx, peak_chains[c], iters, 1, &ms);
        }
        if (!status)
            status = peak_best_ms(dev->ctx, peak_chains[c], iters, 3, &ms);
        const double gflops = giga_per_second(2.0 * 16.0 * peak_chains[c] * iters * items, ms);
        if (!status && gflops > dev->peak_gflops)
            dev->peak_gflops = gflops;
    }
    return status ? runtime_error(dev->label, dev->ctx, "measuring the FMA peak", status) : 0;
}

/* The copy bandwidth: best of COPY_RUNS launches of the copy probe (after one untimed launch)
 * over COPY_BYTES, or the device's largest allocation if smaller; bytes read plus written. */
static int measure_copy(bench_device *dev)
{
    clattn_context *ctx = dev->ctx;
    clattn__error err = {{0}};
    cl_program program = NULL;
    int status = clattn__program_get(ctx, "peak", "", &program, &err);
    if (status)
        return runtime_error(dev->label, ctx, "building the copy probe", clattn__context_report(ctx, status, &err));
    size_t bytes = COPY_BYTES < ctx->caps.max_alloc ? COPY_BYTES : (size_t)ctx->caps.max_alloc;
    bytes -= bytes % 4096;
    const size_t items = bytes / 16;
    cl_int rc;
    cl_mem src = NULL, dst = NULL;
    cl_kernel kernel = clCreateKernel(program, "copy", &rc);
    if (rc == CL_SUCCESS)
        src = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, bytes, NULL, &rc);
    if (rc == CL_SUCCESS)
        dst = clCreateBuffer(ctx->cl, CL_MEM_READ_WRITE, bytes, NULL, &rc);
    if (rc == CL_SUCCESS) {
        const float zero = 0.0f;
        rc = clEnqueueFillBuffer(ctx->queue, src, &zero, sizeof zero, 0, bytes, 0, NULL, NULL);
    }
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(kernel, 0, sizeof src, &src);
    if (rc == CL_SUCCESS)
        rc = clSetKernelArg(kernel, 1, sizeof dst, &dst);
    double best = HUGE_VAL;
    if (rc == CL_SUCCESS)
        rc = best_launch_ms(ctx->queue, kernel, items, COPY_RUNS, &best);
    if (dst != NULL)
        clReleaseMemObject(dst);
    if (src != NULL)
        clReleaseMemObject(src);
    if (kernel != NULL)
        clReleaseKernel(kernel);
    clReleaseProgram(program);
    if (rc != CL_SUCCESS)
        return runtime_error(dev->label, ctx, "measuring the copy bandwidth", rc);
    dev->copy_gbps = giga_per_second(2.0 * (double)bytes, best);
    return 0;
}

/* Contexts for every spec. */
static int open_devices(bench_state *s)
{
    for (int i = 0; i < s->o->num_devices; i++) {
        bench_device *dev = &s->devices[i];
        const clattn_context_desc desc = {.device = s->o->devices[i]};
        const int status = clattn_context_create(&desc, &dev->ctx);
        if (status) {
            fprintf(stderr, "clattn bench: --device '%s': %s (%d): %s\n", desc.device, clattn_status_string(status),
                    status, clattn_context_message(NULL));
            return clattn_exit_status(status);
        }
        s->num_devices++;
        const int reference = clattn_context_is_reference(dev->ctx);
        snprintf(dev->label, sizeof dev->label, "%s", reference ? "reference" : clattn_context_device_name(dev->ctx));
    }
    return 0;
}

/* The peak and the copy bandwidth, measured once per OpenCL device of the process (the bench's
 * columns; tune does without). */
static int measure_devices(bench_state *s)
{
    for (int i = 0; i < s->num_devices; i++) {
        bench_device *dev = &s->devices[i];
        if (clattn_context_is_reference(dev->ctx))
            continue;
        for (int j = 0; j < i; j++)
            if (clattn_context_cl_device(s->devices[j].ctx) == clattn_context_cl_device(dev->ctx)) {
                dev->peak_gflops = s->devices[j].peak_gflops;
                dev->copy_gbps = s->devices[j].copy_gbps;
            }
        if (dev->peak_gflops == 0.0) {
            fprintf(stderr, "clattn bench: measuring the fp32 FMA peak and copy bandwidth of %s\n", dev->label);
            int status = measure_peak(dev);
            if (!status)
                status = measure_copy(dev);
            if (status)
                return status;
        }
    }
    return 0;
}

/* ---- Runs ----------------------------------------------------------------------------------- */

typedef struct {
    clattn_plan *plan;
    cl_command_queue queue;
    clattn_buffers buffers;
} device_run;

/* The plan's event covers only its last command, so a marker enqueued first on the same
 * in-order queue opens the span. */
static int device_run_once(void *state, double *device_ms)
{
    device_run *r = state;
    cl_event start = NULL, end = NULL;
    int status = clEnqueueMarkerWithWaitList(r->queue, 0, NULL, &start);
    if (!status)
        status = clattn_plan_enqueue(r->plan, r->queue, &r->buffers, 0, NULL, &end);
    if (!status)
        status = clFinish(r->queue);
    if (!status)
        status = event_span_ms(start, end, device_ms);
    if (end != NULL)
        clReleaseEvent(end);
    if (start != NULL)
        clReleaseEvent(start);
    return status;
}

/* The caller's tensors are uploaded once per point; the runs reuse them. */
static int bench_device_buffers(bench_state *s, const bench_device *dev, const workload *w, clattn_plan *plan,
                                bench_row *row)
{
    const cl_context cl = clattn_context_cl_context(dev->ctx);
    const cl_mem_flags input = CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR;
    device_run r = {plan, clattn_context_queue(dev->ctx), {0}};
    cl_int rc;
    r.buffers.q = clCreateBuffer(cl, input, w->q_bytes, w->q, &rc);
    if (rc == CL_SUCCESS)
        r.buffers.k = clCreateBuffer(cl, input, w->kv_bytes, w->k, &rc);
    if (rc == CL_SUCCESS)
        r.buffers.v = clCreateBuffer(cl, input, w->kv_bytes, w->v, &rc);
    if (rc == CL_SUCCESS)
        r.buffers.out = clCreateBuffer(cl, CL_MEM_WRITE_ONLY, w->q_bytes, NULL, &rc);
    int status = rc != CL_SUCCESS ? runtime_error(dev->label, dev->ctx, "uploading the inputs", rc) : 0;
    if (!status && (status = time_runs(s, device_run_once, &r, row)) != 0)
        status = runtime_error(dev->label, dev->ctx, "running the plan", status);
    const cl_mem mems[] = {r.buffers.out, r.buffers.v, r.buffers.k, r.buffers.q};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i] != NULL)
            clReleaseMemObject(mems[i]);
    return status;
}

typedef struct {
    clattn_plan *plan;
    clattn_host_tensors tensors;
} host_run;

static int host_run_once(void *state, double *device_ms)
{
    host_run *r = state;
    (void)device_ms; /* host time only */
    return clattn_plan_run_host(r->plan, &r->tensors);
}

/* A clattn device: an OpenCL one on cl_mem buffers, or the reference path on host memory. */
static int bench_clattn(bench_state *s, const bench_device *dev, const workload *w, bench_row *row)
{
    clattn_plan *plan = NULL;
    const double start = now_ms();
    int status = clattn_plan_create(dev->ctx, &w->problem, &plan);
    row->plan_ms = now_ms() - start;
    if (status)
        return runtime_error(dev->label, dev->ctx, "clattn_plan_create", status);
    row->bytes = 2 * w->q_bytes + 2 * w->kv_bytes + clattn_plan_scratch_bytes(plan);
    if (clattn_context_is_reference(dev->ctx)) {
        host_run r = {
            plan,
            {.q = {w->q, w->q_bytes}, .k = {w->k, w->kv_bytes}, .v = {w->v, w->kv_bytes}, .out = {w->out, w->q_bytes}}};
        if ((status = time_runs(s, host_run_once, &r, row)) != 0)
            status = runtime_error(dev->label, dev->ctx, "clattn_plan_run_host", status);
    } else
        status = bench_device_buffers(s, dev, w, plan, row);
    clattn_plan_free(plan);
    return status;
}

#ifdef CLATTN_HAVE_OPENBLAS
/* The unfused attention a C user writes with OpenBLAS: per head S = scale Q Kᵀ into an
 * N x NK scratch, a masked softmax per row, O = P V. Summary tokens (block means) are appended
 * to the keys; the mask is built once, like a caller's mask tensor. */
typedef struct {
    const workload *w;
    int nk;               /* N keys + summary tokens */
    unsigned char *mask;  /* [N, NK] 1: the row sees the key */
    float *scores;        /* [N, NK] */
    float *keys, *values; /* [NK, D] one key/value head with its summary tokens (NULL without) */
} blas_run;

/* Whether `row` sees key `key` of the N keys followed by the summary tokens. */
static int key_visible(const workload *w, const row_band *b, int row, int key)
{
    if (key >= w->n)
        return summary_visible(w, row, key - w->n);
    return (key >= b->lo && key <= b->hi) || (w->is_global[key] && key <= b->last);
}

/* x [N, D] followed by the mean of every block of rows. */
static void append_block_means(const float *x, int n, int d, int block, float *out)
{
    memcpy(out, x, (size_t)n * d * sizeof(float));
    float *mean = out + (size_t)n * d;
    for (int start = 0; start < n; start += block, mean += d) {
        const int end = start + block < n ? start + block : n;
        memset(mean, 0, (size_t)d * sizeof(float));
        for (int j = start; j < end; j++)
            for (int c = 0; c < d; c++)
                mean[c] += x[(size_t)j * d + c];
        for (int c = 0; c < d; c++)
            mean[c] /= (float)(end - start);
    }
}

static void masked_softmax(float *row, const unsigned char *mask, int n)
{
    float max = -INFINITY, sum = 0.0f;
    for (int j = 0; j < n; j++)
        if (mask[j] && row[j] > max)
            max = row[j];
    for (int j = 0; j < n; j++) {
        row[j] = mask[j] ? expf(row[j] - max) : 0.0f;
        sum += row[j];
    }
    for (int j = 0; j < n; j++)
        row[j] /= sum;
}

static int blas_run_once(void *state, double *device_ms)
{
    const blas_run *r = state;
    const clattn_problem *p = &r->w->problem;
    const int n = r->w->n, d = p->head_dim, group = p->heads / p->kv_heads;
    (void)device_ms; /* host time only */
    for (int b = 0; b < p->batch; b++)
        for (int kh = 0; kh < p->kv_heads; kh++) {
            const size_t kv_offset = ((size_t)b * p->kv_heads + kh) * n * d;
            const float *keys = r->w->k + kv_offset, *values = r->w->v + kv_offset;
            if (r->keys != NULL) {
                append_block_means(keys, n, d, p->summary_block, r->keys);
                append_block_means(values, n, d, p->summary_block, r->values);
                keys = r->keys;
                values = r->values;
            }
            for (int h = kh * group; h < (kh + 1) * group; h++) {
                const size_t q_offset = ((size_t)b * p->heads + h) * n * d;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, r->nk, d, 1.0f / sqrtf((float)d),
                            r->w->q + q_offset, d, keys, d, 0.0f, r->scores, r->nk);
                for (int i = 0; i < n; i++)
                    masked_softmax(r->scores + (size_t)i * r->nk, r->mask + (size_t)i * r->nk, r->nk);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, r->nk, 1.0f, r->scores, r->nk, values, d,
                            0.0f, r->w->out + q_offset, d);
            }
        }
    return 0;
}

/* plan_ms is the scratch allocation and the mask, what the caller prepares once. */
static int bench_baseline(bench_state *s, const workload *w, bench_row *row)
{
    const int n = w->n, nk = n + w->num_summary, summaries = w->num_summary > 0;
    const size_t cells = (size_t)n * nk, head_bytes = (size_t)nk * w->problem.head_dim * sizeof(float);
    const double start = now_ms();
    blas_run r = {w,
                  nk,
                  malloc(cells),
                  malloc(cells * sizeof(float)),
                  summaries ? malloc(head_bytes) : NULL,
                  summaries ? malloc(head_bytes) : NULL};
    int status = 0;
    if (!r.mask || !r.scores || (summaries && (!r.keys || !r.values))) {
        fprintf(stderr, "clattn bench: openblas: N = %d: out of host memory for the score matrix\n", n);
        status = EXIT_RUNTIME;
    } else {
        for (int i = 0; i < n; i++) {
            const row_band b = band_of(w, i);
            for (int j = 0; j < nk; j++)
                r.mask[(size_t)i * nk + j] = (unsigned char)key_visible(w, &b, i, j);
        }
        row->plan_ms = now_ms() - start;
        row->bytes = 2 * w->q_bytes + 2 * w->kv_bytes + cells * (1 + sizeof(float)) + 2 * summaries * head_bytes;
        status = time_runs(s, blas_run_once, &r, row);
    }
    free(r.values);
    free(r.keys);
    free(r.scores);
    free(r.mask);
    return status;
}
#endif

/* ---- The sweep ------------------------------------------------------------------------------ */

static void init_row(bench_row *row, int device, const char *label, const workload *w)
{
    *row = (bench_row){.device = device,
                       .pattern = w->pattern,
                       .n = w->n,
                       .window = w->problem.window ? w->problem.window_left : 0,
                       .globals = w->problem.num_global};
    snprintf(row->label, sizeof row->label, "%s", label);
}

/* dev: NULL for the baseline, which has no measured peak or bandwidth. */
static int record_row(bench_state *s, bench_row *row, const workload *w, const bench_device *dev)
{
    const double peak_gflops = dev != NULL ? dev->peak_gflops : 0.0;
    row->gflops = giga_per_second(w->flops, row->ms_median);
    row->peak_gflops = peak_gflops;
    row->pct_peak = percent(row->gflops, peak_gflops);
    row->gbps = giga_per_second((double)(2 * w->q_bytes + 2 * w->kv_bytes), row->ms_median);
    row->copy_gbps = dev != NULL ? dev->copy_gbps : 0.0;
    row->pct_copy = percent(row->gbps, row->copy_gbps);
    if (s->num_rows == s->max_rows) {
        const size_t max = s->max_rows ? 2 * s->max_rows : 32;
        bench_row *rows = realloc(s->rows, max * sizeof *rows);
        if (rows == NULL) {
            fprintf(stderr, "clattn bench: out of host memory for the results\n");
            return EXIT_RUNTIME;
        }
        s->rows = rows;
        s->max_rows = max;
    }
    s->rows[s->num_rows++] = *row;
    fprintf(stderr, "clattn bench: %s %s N=%d: %.3f ms\n", row->label, pattern_names[row->pattern], row->n,
            row->ms_median); /* progress: a long sweep is silent on stdout until the end */
    return 0;
}

static int bench_point(bench_state *s, const workload *w)
{
    int status = 0;
    for (int d = 0; d < s->num_devices && !status; d++) {
        const bench_device *dev = &s->devices[d];
        if (clattn_context_is_reference(dev->ctx) && w->n > REFERENCE_MAX_N)
            continue;
        bench_row row;
        init_row(&row, d, dev->label, w);
        if ((status = bench_clattn(s, dev, w, &row)) == 0)
            status = record_row(s, &row, w, dev);
    }
#ifdef CLATTN_HAVE_OPENBLAS
    if (!status && w->n <= BASELINE_MAX_N && w->pattern != PATTERN_DECODE) { /* it assumes Nq = N */
        bench_row row;
        init_row(&row, s->num_devices, "openblas", w);
        if ((status = bench_baseline(s, w, &row)) == 0)
            status = record_row(s, &row, w, NULL);
    }
#endif
    return status;
}

static int run_sweep(bench_state *s)
{
    int status = 0;
    for (int p = 0; p < PATTERN_COUNT && !status; p++)
        for (int i = 0; i < s->o->num_lengths && s->o->patterns[p] && !status; i++) {
            workload w;
            if ((status = workload_create(s->o, (pattern_id)p, s->o->lengths[i], &w)) == 0) {
                status = bench_point(s, &w);
                workload_free(&w);
            }
        }
    return status;
}

static void compute_speedups(bench_state *s)
{
    for (size_t i = 0; i < s->num_rows; i++)
        for (size_t j = 0; j < s->num_rows; j++) {
            const bench_row *base = &s->rows[j];
            if (base->device == s->num_devices && base->pattern == s->rows[i].pattern && base->n == s->rows[i].n)
                s->rows[i].speedup = base->ms_median / s->rows[i].ms_median;
        }
}

/* ---- Table, JSON lines, CSV ----------------------------------------------------------------- */

enum { COL_DEVICE, COL_PATTERN, COL_FIRST_NUMBER, COL_SPEEDUP = 17, COL_COUNT = 22 };
static const char *const column_names[COL_COUNT] = {
    "device",   "pattern", "B",         "H",      "Hkv",       "N",       "D",      "window",
    "globals",  "plan_ms", "ms_median", "ms_min", "ms_max",    "wall_ms", "gflops", "peak_gflops",
    "pct_peak", "speedup", "bytes",     "gbps",   "copy_gbps", "pct_copy"};

/* Every column as text; an empty speedup means no baseline for the row. */
static void row_fields(const bench_options *o, const bench_row *r, char fields[COL_COUNT][FIELD_SIZE])
{
    static const int decimals[COL_COUNT] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 1, 1, 1, 2, 0, 1, 1, 1};
    const double numbers[COL_COUNT] = {
        0,           0,          o->batch,         o->heads,  o->kv_heads,  r->n,       o->head_dim, r->window,
        r->globals,  r->plan_ms, r->ms_median,     r->ms_min, r->ms_max,    r->wall_ms, r->gflops,   r->peak_gflops,
        r->pct_peak, r->speedup, (double)r->bytes, r->gbps,   r->copy_gbps, r->pct_copy};
    snprintf(fields[COL_DEVICE], FIELD_SIZE, "%s", r->label);
    snprintf(fields[COL_PATTERN], FIELD_SIZE, "%s", pattern_names[r->pattern]);
    for (int c = COL_FIRST_NUMBER; c < COL_COUNT; c++)
        snprintf(fields[c], FIELD_SIZE, "%.*f", decimals[c], numbers[c]);
    if (r->speedup <= 0.0)
        fields[COL_SPEEDUP][0] = '\0';
}

/* Names left-aligned, numbers right-aligned, each column as wide as its widest entry. */
static void print_table(const bench_state *s)
{
    static char fields[COL_COUNT][FIELD_SIZE];
    int width[COL_COUNT];
    for (int c = 0; c < COL_COUNT; c++)
        width[c] = (int)strlen(column_names[c]);
    for (size_t i = 0; i < s->num_rows; i++) {
        row_fields(s->o, &s->rows[i], fields);
        for (int c = 0; c < COL_COUNT; c++)
            width[c] = (int)strlen(fields[c]) > width[c] ? (int)strlen(fields[c]) : width[c];
    }
    for (size_t i = 0; i <= s->num_rows; i++) { /* i == 0: the header */
        if (i > 0)
            row_fields(s->o, &s->rows[i - 1], fields);
        for (int c = 0; c < COL_COUNT; c++)
            printf(c + 1 < COL_COUNT ? "%*s  " : "%*s\n", c < COL_FIRST_NUMBER ? -width[c] : width[c],
                   i > 0 ? fields[c] : column_names[c]);
    }
}

static void print_json(const bench_state *s)
{
    static char fields[COL_COUNT][FIELD_SIZE];
    for (size_t i = 0; i < s->num_rows; i++) {
        row_fields(s->o, &s->rows[i], fields);
        for (int c = 0; c < COL_COUNT; c++) {
            printf("%s\"%s\": ", c ? ", " : "{", column_names[c]);
            if (c >= COL_FIRST_NUMBER) {
                fputs(fields[c][0] ? fields[c] : "null", stdout);
                continue;
            }
            putchar('"');
            for (const unsigned char *p = (const unsigned char *)fields[c]; *p; p++)
                printf(*p == '"' || *p == '\\' ? "\\%c" : *p < 0x20 ? "\\u%04x" : "%c", *p);
            putchar('"');
        }
        puts("}");
    }
}

static void print_csv(const bench_state *s)
{
    static char fields[COL_COUNT][FIELD_SIZE];
    for (int c = 0; c < COL_COUNT; c++)
        printf(c + 1 < COL_COUNT ? "%s," : "%s\n", column_names[c]);
    for (size_t i = 0; i < s->num_rows; i++) {
        row_fields(s->o, &s->rows[i], fields);
        for (int c = 0; c < COL_COUNT; c++) {
            if (c < COL_FIRST_NUMBER) { /* quoted, with quotes doubled (RFC 4180) */
                putchar('"');
                for (const char *p = fields[c]; *p; p++) {
                    if (*p == '"')
                        putchar('"');
                    putchar(*p);
                }
                putchar('"');
            } else
                fputs(fields[c], stdout);
            putchar(c + 1 < COL_COUNT ? ',' : '\n');
        }
    }
}

/* ---- SVG plot: time and GFLOP/s against N, log-log ------------------------------------------ */

#define PANEL_W 440.0
#define PANEL_H 300.0
#define PANEL_TOP 80.0
#define LEGEND_TOP 450.0

typedef struct {
    double left;    /* pixel x of the plot area; its top is PANEL_TOP */
    int x_lo, x_hi; /* log2 N range */
    int y_lo, y_hi; /* log10 value range */
    int gflops;     /* 0: ms_median */
} svg_panel;

static double metric(const bench_row *r, int gflops)
{
    return gflops ? r->gflops : r->ms_median;
}

static void xml_text(FILE *f, const char *text)
{
    static const char specials[] = "&<>\"'";
    static const char *const entities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (; *text; text++) {
        const char *special = strchr(specials, *text);
        if (special != NULL)
            fputs(entities[special - specials], f);
        else
            fputc(*text, f);
    }
}

/* Whole powers of 2 (N) and of 10 (values) around the data, at least one apart. */
static svg_panel panel_for(const bench_state *s, double left, int gflops)
{
    double n_lo = HUGE_VAL, n_hi = 0.0, v_lo = HUGE_VAL, v_hi = 0.0;
    for (size_t i = 0; i < s->num_rows; i++) {
        const double v = metric(&s->rows[i], gflops);
        if (v > 0.0) { /* nothing else has a place on a log axis */
            n_lo = fmin(n_lo, s->rows[i].n);
            n_hi = fmax(n_hi, s->rows[i].n);
            v_lo = fmin(v_lo, v);
            v_hi = fmax(v_hi, v);
        }
    }
    svg_panel p = {left, 0, 1, 0, 1, gflops};
    if (n_hi > 0.0)
        p = (svg_panel){
            left,  (int)floor(log2(n_lo)), (int)ceil(log2(n_hi)), (int)floor(log10(v_lo)), (int)ceil(log10(v_hi)),
            gflops};
    p.x_hi += p.x_hi == p.x_lo;
    p.y_hi += p.y_hi == p.y_lo;
    return p;
}

static double panel_x(const svg_panel *p, double n)
{
    return p->left + (log2(n) - p->x_lo) / (p->x_hi - p->x_lo) * PANEL_W;
}

static double panel_y(const svg_panel *p, double value)
{
    return PANEL_TOP + PANEL_H - (log10(value) - p->y_lo) / (p->y_hi - p->y_lo) * PANEL_H;
}

static void svg_axes(FILE *f, const svg_panel *p, const char *title)
{
    const double bottom = PANEL_TOP + PANEL_H, middle = p->left + PANEL_W / 2;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-weight=\"bold\">%s</text>\n", middle,
            PANEL_TOP - 12, title);
    for (int e = p->x_lo; e <= p->x_hi; e++) {
        const double x = panel_x(p, ldexp(1.0, e));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x, PANEL_TOP, x,
                bottom);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", x, bottom + 18, ldexp(1.0, e));
    }
    for (int e = p->y_lo; e <= p->y_hi; e++) {
        const double y = panel_y(p, pow(10.0, e));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", p->left, y,
                p->left + PANEL_W, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", p->left - 6, y + 4, pow(10.0, e));
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", p->left,
            PANEL_TOP, PANEL_W, PANEL_H);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">N (sequence length)</text>\n", middle, bottom + 38);
}

/* Where a row of the (device, pattern) series lies on the panel; 0 when it is not drawn there. */
static int series_point(const bench_row *r, const svg_panel *p, int device, int pattern, double *x, double *y)
{
    if (r->device != device || (int)r->pattern != pattern || metric(r, p->gflops) <= 0.0)
        return 0;
    *x = panel_x(p, r->n);
    *y = panel_y(p, metric(r, p->gflops));
    return 1;
}

/* `line` styles the polyline; the markers are filled with `color`. */
static void svg_series(FILE *f, const bench_state *s, const svg_panel *p, int device, int pattern, const char *line,
                       const char *color)
{
    double x, y;
    fprintf(f, "<polyline fill=\"none\" %s points=\"", line);
    for (size_t i = 0; i < s->num_rows; i++)
        if (series_point(&s->rows[i], p, device, pattern, &x, &y))
            fprintf(f, "%.1f,%.1f ", x, y);
    fputs("\"/>\n", f);
    for (size_t i = 0; i < s->num_rows; i++)
        if (series_point(&s->rows[i], p, device, pattern, &x, &y))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x, y, color);
}

/* Colour by device, dashes by pattern; the legend under the panels in two columns. */
static int write_plot(const bench_state *s, FILE *f)
{
    static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                         "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    static const char *const dashes[] = {"none", "8 4", "2 3", "8 3 2 3", "12 3 2 3 2 3", "12 4 4 4"};
    _Static_assert(sizeof dashes / sizeof dashes[0] == PATTERN_COUNT, "a dash style for every pattern");
    const svg_panel panels[2] = {panel_for(s, 80.0, 0), panel_for(s, 620.0, 1)};
    const char *labels[MAX_DEVICES + 1] = {0}; /* by device index; the baseline last */
    int series = 0, seen[MAX_DEVICES + 1][PATTERN_COUNT] = {{0}};
    for (size_t i = 0; i < s->num_rows; i++) {
        const bench_row *r = &s->rows[i];
        series += !seen[r->device][r->pattern];
        seen[r->device][r->pattern] = 1;
        labels[r->device] = r->label;
    }
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1100\" "
            "height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" "
            "fill=\"white\"/>\n<text x=\"550\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">clattn bench:",
            LEGEND_TOP + 20.0 * ((series + 1) / 2) + 20.0);
    const char *separator = " ";
    for (int d = 0; d <= s->num_devices; d++)
        if (labels[d] != NULL) {
            fputs(separator, f);
            xml_text(f, labels[d]);
            separator = ", ";
        }
    fprintf(f,
            "</text>\n<text x=\"550\" y=\"48\" text-anchor=\"middle\">B=%d H=%d Hkv=%d D=%d, median of %d runs"
            "</text>\n",
            s->o->batch, s->o->heads, s->o->kv_heads, s->o->head_dim, s->o->repeat);
    svg_axes(f, &panels[0], "time (ms)");
    svg_axes(f, &panels[1], "GFLOP/s");
    for (int d = 0, entry = 0; d <= s->num_devices; d++)
        for (int p = 0; p < PATTERN_COUNT; p++) {
            if (!seen[d][p])
                continue;
            char line[96];
            snprintf(line, sizeof line, "stroke=\"%s\" stroke-width=\"1.5\" stroke-dasharray=\"%s\"", colors[d % 8],
                     dashes[p]);
            svg_series(f, s, &panels[0], d, p, line, colors[d % 8]);
            svg_series(f, s, &panels[1], d, p, line, colors[d % 8]);
            const int rows = (series + 1) / 2; /* column-major, so that a device's entries stay together */
            const double x = 80.0 + 540.0 * (entry / rows), y = LEGEND_TOP + 20.0 * (entry % rows);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" %s/>\n", x, y, x + 36, y, line);
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n<text x=\"%.1f\" y=\"%.1f\">", x + 18, y,
                    colors[d % 8], x + 44, y + 4);
            xml_text(f, labels[d]);
            fprintf(f, " \xe2\x80\x94 %s</text>\n", pattern_names[p]);
            entry++;
        }
    fputs("</svg>\n", f);
    return ferror(f) ? EXIT_RUNTIME : 0;
}

/* --------------------------------------------------------------------------------------------- */

/* Opens the devices of o into a fresh state; free_state() undoes it, also after a failure. */
static int open_state(const bench_options *o, bench_state *s)
{
    *s = (bench_state){.o = o};
    s->samples = malloc(2 * (size_t)o->repeat * sizeof *s->samples);
    return s->samples != NULL ? open_devices(s) : EXIT_RUNTIME;
}

static void free_state(bench_state *s)
{
    free(s->rows);
    for (int d = s->num_devices - 1; d >= 0; d--)
        clattn_context_free(s->devices[d].ctx);
    free(s->samples);
}

int bench_main(int argc, char **argv)
{
    bench_options o;
    int status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? 0 : status;
    if (o.num_devices == 0)
        default_devices(&o);
    FILE *plot = NULL; /* opened before the sweep, so that a bad path costs no run */
    if (o.plot != NULL && (plot = fopen(o.plot, "w")) == NULL) {
        fprintf(stderr, "clattn bench: --plot '%s': %s\n", o.plot, strerror(errno));
        return EXIT_USAGE;
    }
    bench_state s;
    status = open_state(&o, &s);
    if (!status)
        status = measure_devices(&s);
    if (!status)
        status = run_sweep(&s);
    /* What finished before a failure is still worth printing. */
    compute_speedups(&s);
    if (o.format == FORMAT_JSON)
        print_json(&s);
    else if (o.format == FORMAT_CSV)
        print_csv(&s);
    else if (s.num_rows > 0)
        print_table(&s);
    if (plot != NULL) {
        const int plot_status = write_plot(&s, plot);
        if ((fclose(plot) != 0 || plot_status) && !status) {
            fprintf(stderr, "clattn bench: --plot '%s': writing failed\n", o.plot);
            status = EXIT_RUNTIME;
        }
    }
    free_state(&s);
    return status;
}

/* ---- clattn tune ---------------------------------------------------------------------------- */

/* The tile space searched: CPU-variant (rows, score width) pairs (10 to 16 rows only fit the 32
 * registers of AVX-512) and GPU-variant (work-group, key tile) pairs; the library still clamps
 * each to the device's limits. */
static const clattn_tiles tune_candidates[] = {
    {1, 4, 1, 1, 8},    {1, 6, 1, 1, 8},    {1, 8, 1, 1, 8},   {1, 12, 1, 1, 8},   {1, 4, 1, 1, 16},
    {1, 6, 1, 1, 16},   {1, 8, 1, 1, 16},   {1, 10, 1, 1, 16}, {1, 12, 1, 1, 16},  {1, 16, 1, 1, 16},
    {0, 1, 32, 16, 0},  {0, 1, 32, 32, 0},  {0, 1, 64, 16, 0}, {0, 1, 64, 32, 0},  {0, 1, 64, 64, 0},
    {0, 1, 128, 32, 0}, {0, 1, 128, 64, 0},
};

/* Times every candidate on the first --device for the first pattern and the largest length, prints them,
 * and the winner as a row for the table in host/tuning.c. */
static int tune_device(bench_state *s, bench_device *dev)
{
    pattern_id pattern = PATTERN_DENSE;
    while (!s->o->patterns[pattern])
        pattern++;
    workload w;
    int status = workload_create(s->o, pattern, s->o->lengths[s->o->num_lengths - 1], &w);
    if (status)
        return status;
    const size_t count = sizeof tune_candidates / sizeof tune_candidates[0];
    size_t best = count;
    double best_ms = INFINITY;
    printf("tuning %s: %s, B=%d H=%d Hkv=%d N=%d D=%d\n", dev->label, pattern_names[pattern], s->o->batch, s->o->heads,
           s->o->kv_heads, w.n, s->o->head_dim);
    for (size_t c = 0; c < count && !status; c++) {
        const clattn_tiles *t = &tune_candidates[c];
        bench_row row;
        init_row(&row, 0, dev->label, &w);
        clattn_context_force_tiles(dev->ctx, t);
        if ((status = bench_clattn(s, dev, &w, &row)) != 0)
            break;
        printf("  %-5s rows=%-2d kw=%-2d wg=%-3d bk=%-2d  %9.3f ms  %7.1f GFLOP/s\n", t->cpu_variant ? "cpu" : "local",
               t->rows, t->kw, t->wg, t->bk, row.ms_median, giga_per_second(w.flops, row.ms_median));
        if (row.ms_median < best_ms) {
            best_ms = row.ms_median;
            best = c;
        }
    }
    clattn_context_force_tiles(dev->ctx, NULL);
    if (!status && best < count) {
        const clattn_tiles *t = &tune_candidates[best];
        printf("best: {\"%s\", NULL, CL_DEVICE_TYPE_ALL, {%d, %d, %d, %d, %d}},  /* %.3f ms */\n", dev->label,
               t->cpu_variant, t->rows, t->wg, t->bk, t->kw, best_ms);
    }
    workload_free(&w);
    return status;
}

int tune_main(int argc, char **argv)
{
    bench_options o;
    int status = parse_args(argc, argv, &o);
    if (status)
        return status < 0 ? 0 : status;
    if (o.num_devices == 0)
        o.devices[0][0] = '\0'; /* the default device */
    o.num_devices = 1;
    bench_state s;
    status = open_state(&o, &s);
    if (!status && clattn_context_is_reference(s.devices[0].ctx)) {
        fprintf(stderr, "clattn tune: the reference path has no tiles to tune\n");
        status = EXIT_USAGE;
    }
    if (!status)
        status = tune_device(&s, &s.devices[0]);
    free_state(&s);
    return status;
}

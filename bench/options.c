/* Argument parsing and the usage text of `clattn bench` (which `clattn tune` shares): every flag
 * that takes a value goes through parse_value(), so a missing value fails like a bad one. */
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clattn_advanced.h"
#include "exit_status.h"

const char *const pattern_names[PATTERN_COUNT] = {"dense",  "causal", "window",      "window-global", "window-summary",
                                                  "decode", "axial",  "criss-cross", "neighborhood",  "swin"};
const char *const dtype_names[3] = {"f32", "f16", "bf16"};

size_t dtype_bytes(clattn_dtype dtype)
{
    return dtype == CLATTN_DTYPE_F32 ? 4 : 2;
}

static void usage(void)
{
    puts("usage: clattn bench [--device SPEC]... [--pattern LIST] [--n LIST] [--b B] [--h H] [--hkv HKV]\n"
         "                    [--d D] [--window W] [--globals G] [--summary-block S] [--repeat R]\n"
         "                    [--grid H,W] [--kernel KH,KW[,D]] [--swin M[,S]] [--dtype f32|f16|bf16]\n"
         "                    [--warmup W] [--rounds R] [--json | --csv | --brief] [--plot FILE.svg]\n"
         "                    [--cache-dir DIR]\n"
         "       clattn tune [the same] [--save]\n"
         "  --device   cpu, gpu, P:D or reference, repeatable (default: every OpenCL device, reference)\n"
         "  --pattern  dense, causal, window, window-global, window-summary, decode, axial, criss-cross,\n"
         "             neighborhood, swin (default dense); decode: one query row against N keys, causal;\n"
         "             the last four: 2-D patterns (axial: axial-row) on a grid of N tokens\n"
         "  --n        sequence lengths (default 512,1024,2048)\n"
         "  --grid H,W the grid of the 2-D patterns (adds N = H * W); other N: the squarest grid\n"
         "  --kernel KH,KW[,D]  neighborhood kernel and dilation (default 7,7,1)\n"
         "  --swin M[,S]        Swin window and shift (default 8,4)\n"
         "  --dtype    the storage type of Q, K, V and O: f32 (default), f16 or bf16; arithmetic is\n"
         "             float32 in every type; bytes and GB/s count the stored size; the openblas\n"
         "             baseline runs for f32 alone\n"
         "  --rounds R run the sweep R times over, each row's R x repeat samples pooled before its\n"
         "             median: on a shared machine, rows then compare runs spread over the same minutes\n"
         "             (bench only; default 1)\n"
         "  --brief    a table of device, pattern, dtype, N, ms, GFLOP/s, % of peak and x the baseline only\n"
         "  --cache-dir  compiled programs and tuned tiles (default $CLATTN_CACHE_DIR): plans use the\n"
         "               tiles saved there for their device and driver\n"
         "  --save       tune: save the winning tiles for this device and driver in the cache directory\n"
         "               (not for a 2-D pattern: the tiles shape every plan of the device)\n"
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
    return usage_error(flag, name,
                       "unknown pattern (dense, causal, window, window-global, window-summary, decode, axial, "
                       "criss-cross, neighborhood, swin)");
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

/* Between min_count and max_count comma-separated integers >= min into out. */
static int parse_ints(const char *flag, const char *text, int min, int min_count, int max_count, int *out)
{
    int count = 0;
    for (const char *p = text;; p++) {
        char item[32];
        const size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof item || count == max_count)
            return usage_error(flag, text, "expected comma-separated integers");
        memcpy(item, p, len);
        item[len] = '\0';
        const int status = parse_int(flag, item, min, &out[count++]);
        if (status)
            return status;
        if (p[len] == '\0')
            break;
        p += len;
    }
    return count < min_count ? usage_error(flag, text, "too few values") : 0;
}

/* --grid H,W, --kernel KH,KW[,D], --swin M[,S]; 1 when flag is none of them (*status untouched). */
static int parse_grid_flag(bench_options *o, const char *flag, const char *value, int *status)
{
    if (strcmp(flag, "--grid") == 0) {
        int hw[2];
        if ((*status = parse_ints(flag, value, 1, 2, 2, hw)) == 0) {
            if ((long long)hw[0] * hw[1] > INT_MAX)
                return *status = usage_error(flag, value, "the grid has too many tokens"), 0;
            o->grid_h = hw[0], o->grid_w = hw[1];
            char n[24];
            snprintf(n, sizeof n, "%d", hw[0] * hw[1]);
            *status = add_length(o, flag, n);
        }
        return 0;
    }
    if (strcmp(flag, "--kernel") == 0) {
        int k[3] = {0, 0, 1};
        *status = parse_ints(flag, value, 1, 2, 3, k);
        o->kernel_h = k[0], o->kernel_w = k[1], o->grid_dilation = k[2];
        return 0;
    }
    if (strcmp(flag, "--swin") == 0) {
        int m[2] = {0, 0};
        *status = parse_ints(flag, value, 0, 1, 2, m);
        if (!*status && (m[0] < 1 || m[1] >= m[0]))
            *status = usage_error(flag, value, "expected M >= 1 and 0 <= S < M");
        o->swin_size = m[0], o->swin_shift = m[1];
        return 0;
    }
    return 1;
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
                {"--repeat", &o->repeat, 1}, {"--warmup", &o->warmup, 0}, {"--summary-block", &o->summary_block, 1},
                {"--rounds", &o->rounds, 1}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (strcmp(flag, ints[i].flag) == 0)
            return parse_int(flag, value, ints[i].min, ints[i].field);
    int status = 0;
    if (!parse_grid_flag(o, flag, value, &status))
        return status;
    if (strcmp(flag, "--device") == 0)
        return add_device(o, flag, value);
    if (strcmp(flag, "--dtype") == 0) {
        for (int d = 0; d < (int)(sizeof dtype_names / sizeof dtype_names[0]); d++)
            if (strcmp(value, dtype_names[d]) == 0) {
                o->dtype = (clattn_dtype)d;
                return 0;
            }
        return usage_error(flag, value, "expected f32, f16 or bf16");
    }
    if (strcmp(flag, "--pattern") == 0)
        return parse_list(o, flag, value, add_pattern);
    if (strcmp(flag, "--n") == 0)
        return parse_list(o, flag, value, add_length);
    if (strcmp(flag, "--cache-dir") == 0) {
        if (value[0] == '\0')
            return usage_error(flag, value, "expected a directory");
        o->cache_dir = value;
        return 0;
    }
    if (strcmp(flag, "--plot") != 0)
        return usage_error("argument", flag, "unknown option");
    o->plot = value;
    return 0;
}

int options_parse(int argc, char **argv, bench_options *o)
{
    static const int default_lengths[] = {512, 1024, 2048};
    *o = (bench_options){.batch = 1,
                         .heads = 8,
                         .head_dim = 64,
                         .window = 256,
                         .globals = 16,
                         .summary_block = 64,
                         .kernel_h = 7,
                         .kernel_w = 7,
                         .grid_dilation = 1,
                         .swin_size = 8,
                         .swin_shift = 4,
                         .repeat = 10,
                         .warmup = 2,
                         .rounds = 1,
                         .format = FORMAT_TABLE};
    for (int i = 1; i < argc; i++) {
        int status = 0;
        if (strcmp(argv[i], "--json") == 0)
            o->format = FORMAT_JSON;
        else if (strcmp(argv[i], "--csv") == 0)
            o->format = FORMAT_CSV;
        else if (strcmp(argv[i], "--brief") == 0)
            o->format = FORMAT_BRIEF;
        else if (strcmp(argv[i], "--save") == 0)
            o->save = 1;
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

void options_grid(const bench_options *o, int n, int *h, int *w)
{
    if (o->grid_h > 0 && (long long)o->grid_h * o->grid_w == n) {
        *h = o->grid_h, *w = o->grid_w;
        return;
    }
    *h = 1;
    for (int d = 1; (long long)d * d <= n; d++)
        if (n % d == 0)
            *h = d;
    *w = n / *h;
}

void options_default_devices(bench_options *o)
{
    clattn_device_info list[MAX_DEVICES - 1]; /* one place stays for the reference path */
    int count = 0;
    if (clattn_device_list(list, MAX_DEVICES - 1, &count) != CLATTN_STATUS_OK)
        count = 0; /* no OpenCL at all: the reference path still runs */
    _Static_assert(sizeof list[0].spec <= sizeof o->devices[0], "a device spec fits a --device value");
    for (int d = 0; d < count && d < MAX_DEVICES - 1; d++)
        strcpy(o->devices[o->num_devices++], list[d].spec);
    strcpy(o->devices[o->num_devices++], "reference");
}

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

const char *const pattern_names[PATTERN_COUNT] = {"dense",         "causal",         "window",
                                                  "window-global", "window-summary", "decode"};

static void usage(void)
{
    puts("usage: clattn bench [--device SPEC]... [--pattern LIST] [--n LIST] [--b B] [--h H] [--hkv HKV]\n"
         "                    [--d D] [--window W] [--globals G] [--summary-block S] [--repeat R]\n"
         "                    [--warmup W] [--json | --csv | --brief] [--plot FILE.svg] [--cache-dir DIR]\n"
         "       clattn tune [the same] [--save]\n"
         "  --device   cpu, gpu, P:D or reference, repeatable (default: every OpenCL device, reference)\n"
         "  --pattern  dense, causal, window, window-global, window-summary, decode (default dense);\n"
         "             decode: one query row against N keys, causal\n"
         "  --n        sequence lengths (default 512,1024,2048)\n"
         "  --brief    a table of device, pattern, N, ms, GFLOP/s, % of peak and x the baseline only\n"
         "  --cache-dir  compiled programs and tuned tiles (default $CLATTN_CACHE_DIR): plans use the\n"
         "               tiles saved there for their device and driver\n"
         "  --save       tune: save the winning tiles for this device and driver in the cache directory\n"
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
                         .repeat = 10,
                         .warmup = 2,
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

/* Parsing of `clattn run`'s arguments: flags, comma-separated integer lists, grid patterns. */
#include "run_args.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tool_error.h"

#define MAX_LIST 65536

static int bad_value(run_args *a, const char *flag, const char *value, const char *why)
{
    snprintf(a->message, sizeof a->message, "%s '%s': %s", flag, value, why);
    return TOOL_STATUS_USAGE;
}

/* A comma-separated list of integers into a new array. */
static int parse_int_list(run_args *a, const char *flag, const char *text, int **out, int *count)
{
    int n = 1;
    for (const char *c = text; *c; c++)
        n += *c == ',';
    if (n > MAX_LIST)
        return bad_value(a, flag, text, "too many entries");
    int *values = malloc((size_t)n * sizeof *values);
    if (values == NULL)
        return bad_value(a, flag, text, "out of memory");
    const char *c = text;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        const long x = strtol(c, &end, 10);
        if (end == c || errno != 0 || x < INT_MIN || x > INT_MAX || (*end != ',' && *end != '\0')) {
            free(values);
            return bad_value(a, flag, text, "expected comma-separated integers");
        }
        values[i] = (int)x;
        c = end + 1;
    }
    *out = values;
    *count = n;
    return CLATTN_STATUS_OK;
}

/* Exactly `count` integers, or between min_count and count. */
static int parse_ints(run_args *a, const char *flag, const char *text, int *dst, int min_count, int max_count, int *got)
{
    int *values = NULL, n = 0;
    int status = parse_int_list(a, flag, text, &values, &n);
    if (status)
        return status;
    if (n < min_count || n > max_count) {
        free(values);
        return bad_value(a, flag, text, "wrong number of values");
    }
    memcpy(dst, values, (size_t)n * sizeof *dst);
    free(values);
    if (got != NULL)
        *got = n;
    return CLATTN_STATUS_OK;
}

static int parse_grid_pattern(run_args *a, const char *text)
{
    clattn_problem *p = &a->problem;
    static const struct {
        const char *name;
        clattn_grid_pattern pattern;
    } names[] = {{"axial-row", CLATTN_GRID_AXIAL_ROW},
                 {"axial-column", CLATTN_GRID_AXIAL_COLUMN},
                 {"criss-cross", CLATTN_GRID_CRISS_CROSS},
                 {"neighborhood=", CLATTN_GRID_NEIGHBORHOOD},
                 {"window=", CLATTN_GRID_WINDOW}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const size_t len = strlen(names[i].name);
        if (strncmp(text, names[i].name, len) != 0 || (names[i].name[len - 1] != '=' && text[len] != '\0'))
            continue;
        p->grid_pattern = names[i].pattern;
        int v[3] = {0, 0, 1}, got = 0;
        if (p->grid_pattern == CLATTN_GRID_NEIGHBORHOOD) {
            int status = parse_ints(a, "--grid-pattern", text + len, v, 2, 3, &got);
            p->grid_kernel_h = v[0];
            p->grid_kernel_w = v[1];
            p->grid_dilation = v[2];
            return status;
        }
        if (p->grid_pattern == CLATTN_GRID_WINDOW) {
            v[1] = 0;
            int status = parse_ints(a, "--grid-pattern", text + len, v, 1, 2, &got);
            p->grid_window_size = v[0];
            p->grid_shift = v[1];
            return status;
        }
        return CLATTN_STATUS_OK;
    }
    return bad_value(a, "--grid-pattern", text, "unknown pattern");
}

/* One flag with its value; returns a status and sets message on failure. */
static int parse_flag(run_args *a, const char *flag, const char *value)
{
    clattn_problem *p = &a->problem;
    const char **files[] = {&a->q, &a->k, &a->v, &a->out, &a->lse, &a->qg, &a->kg, &a->vg, &a->kx, &a->vx, &a->device};
    static const char *file_flags[] = {"--q",  "--k",  "--v",  "--out", "--lse",   "--qg",
                                       "--kg", "--vg", "--kx", "--vx",  "--device"};
    for (size_t i = 0; i < sizeof file_flags / sizeof file_flags[0]; i++)
        if (strcmp(flag, file_flags[i]) == 0) {
            *files[i] = value;
            return CLATTN_STATUS_OK;
        }
    int got = 0, v[3] = {0, 0, 0};
    if (strcmp(flag, "--window") == 0) {
        int status = parse_ints(a, flag, value, v, 1, 2, &got);
        p->window = 1;
        p->window_left = v[0];
        p->window_right = got == 2 ? v[1] : v[0];
        return status;
    }
    if (strcmp(flag, "--dilation") == 0 || strcmp(flag, "--summary-block") == 0) {
        int status = parse_ints(a, flag, value, v, 1, 1, NULL);
        if (!status && v[0] < 1)
            return bad_value(a, flag, value, "must be at least 1");
        *(flag[2] == 'd' ? &p->dilation : &p->summary_block) = v[0];
        return status;
    }
    if (strcmp(flag, "--global") == 0) {
        free(a->globals);
        a->globals = NULL;
        return parse_int_list(a, flag, value, &a->globals, &p->num_global);
    }
    if (strcmp(flag, "--seq-lens") == 0) {
        free(a->seq_lens);
        a->seq_lens = NULL;
        return parse_int_list(a, flag, value, &a->seq_lens, &a->num_seq_lens);
    }
    if (strcmp(flag, "--scale") == 0) {
        char *end;
        p->scale = strtof(value, &end);
        if (end == value || *end != '\0' || !(p->scale > 0.0f || p->scale < 0.0f))
            return bad_value(a, flag, value, "expected a nonzero number");
        return CLATTN_STATUS_OK;
    }
    if (strcmp(flag, "--summary-tail") == 0) {
        if (strcmp(value, "merge") != 0 && strcmp(value, "own") != 0)
            return bad_value(a, flag, value, "expected merge or own");
        p->summary_tail = value[0] == 'o' ? CLATTN_SUMMARY_TAIL_OWN : CLATTN_SUMMARY_TAIL_MERGE;
        return CLATTN_STATUS_OK;
    }
    if (strcmp(flag, "--grid") == 0) {
        int status = parse_ints(a, flag, value, v, 2, 2, NULL);
        p->grid_h = v[0];
        p->grid_w = v[1];
        return status;
    }
    if (strcmp(flag, "--grid-pattern") == 0)
        return parse_grid_pattern(a, value);
    snprintf(a->message, sizeof a->message, "unknown option '%s'", flag);
    return TOOL_STATUS_USAGE;
}

int run_args_parse(int argc, char **argv, run_args *a)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--causal") == 0) {
            a->problem.causal = 1;
            continue;
        }
        if (i + 1 >= argc || strncmp(argv[i], "--", 2) != 0) {
            snprintf(a->message, sizeof a->message, "option '%s' needs a value (or is unknown)", argv[i]);
            return TOOL_STATUS_USAGE;
        }
        int status = parse_flag(a, argv[i], argv[i + 1]);
        if (status)
            return status;
        i++;
    }
    const char *required[] = {a->q, a->k, a->v, a->out};
    static const char *names[] = {"--q", "--k", "--v", "--out"};
    for (int i = 0; i < 4; i++)
        if (required[i] == NULL) {
            snprintf(a->message, sizeof a->message, "%s is required", names[i]);
            return TOOL_STATUS_USAGE;
        }
    if ((a->qg != NULL) != (a->kg != NULL) || (a->kg != NULL) != (a->vg != NULL) ||
        (a->kx != NULL) != (a->vx != NULL)) {
        snprintf(a->message, sizeof a->message, "--qg, --kg and --vg go together, and so do --kx and --vx");
        return TOOL_STATUS_USAGE;
    }
    return CLATTN_STATUS_OK;
}

void run_args_free(run_args *a)
{
    free(a->seq_lens);
    free(a->globals);
    a->seq_lens = NULL;
    a->globals = NULL;
}

/* Rows as text, once (row_fields), and the four ways of printing them: the full table, the
 * brief one, JSON lines and CSV. */
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exit_status.h"

#define FIELD_SIZE 160

/* Indices into column_names: the JSON, CSV and full-table order. */
enum {
    COL_DEVICE,
    COL_PATTERN,
    COL_DTYPE,
    COL_FIRST_NUMBER,
    COL_N = 6,
    COL_MS_MEDIAN = 11,
    COL_GFLOPS = 15,
    COL_PCT_PEAK = 17,
    COL_SPEEDUP = 18,
    COL_COUNT = 25
};
static const char *const column_names[COL_COUNT] = {
    "device",  "pattern", "dtype",     "B",         "H",        "Hkv",      "N",       "D",           "window",
    "globals", "plan_ms", "ms_median", "ms_min",    "ms_max",   "wall_ms",  "gflops",  "peak_gflops", "pct_peak",
    "speedup", "bytes",   "gbps",      "copy_gbps", "pct_copy", "peak_min", "peak_max"};

/* A table: which columns, under which headers. */
typedef struct {
    int count;
    const int *columns; /* NULL: every column in order */
    const char *const *headers;
} table_view;

static const table_view full_view = {COL_COUNT, NULL, column_names};

/* What a person reads at a glance (ci/demo.sh). */
static const int brief_columns[] = {COL_DEVICE,    COL_PATTERN, COL_DTYPE,    COL_N,
                                    COL_MS_MEDIAN, COL_GFLOPS,  COL_PCT_PEAK, COL_SPEEDUP};
static const char *const brief_headers[] = {"device", "pattern", "dtype", "N", "ms", "GFLOP/s", "% peak", "x openblas"};
static const table_view brief_view = {sizeof brief_columns / sizeof brief_columns[0], brief_columns, brief_headers};

void row_init(bench_row *row, int device, const char *label, const workload *w)
{
    *row = (bench_row){.device = device,
                       .pattern = w->pattern,
                       .n = w->n,
                       .window = w->problem.window ? w->problem.window_left : 0,
                       .globals = w->problem.num_global,
                       .flops = w->flops,
                       .io_bytes = (double)(2 * w->q_bytes + 2 * w->kv_bytes)};
    snprintf(row->label, sizeof row->label, "%s", label);
}

int results_add(bench_results *r, const bench_row *row)
{
    if (r->num_rows == r->max_rows) {
        const size_t max = r->max_rows ? 2 * r->max_rows : 32;
        bench_row *rows = realloc(r->rows, max * sizeof *rows);
        if (rows == NULL) {
            fprintf(stderr, "clattn bench: out of host memory for the results\n");
            return EXIT_RUNTIME;
        }
        r->rows = rows;
        r->max_rows = max;
    }
    r->rows[r->num_rows++] = *row;
    return 0;
}

void results_speedups(bench_results *r)
{
    for (size_t i = 0; i < r->num_rows; i++)
        for (size_t j = 0; j < r->num_rows; j++) {
            const bench_row *base = &r->rows[j];
            if (base->device == r->baseline && base->pattern == r->rows[i].pattern && base->n == r->rows[i].n)
                r->rows[i].speedup = base->time.ms_median / r->rows[i].time.ms_median;
        }
}

void results_free(bench_results *r)
{
    free(r->rows);
    r->rows = NULL;
    r->num_rows = r->max_rows = 0;
}

/* Every column as text; an empty speedup means no baseline for the row. */
static void row_fields(const bench_options *o, const bench_row *r, char fields[COL_COUNT][FIELD_SIZE])
{
    static const int decimals[COL_COUNT] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 1, 1, 1, 2, 0, 1, 1, 1, 1, 1};
    const double numbers[COL_COUNT] = {0,
                                       0,
                                       0,
                                       o->batch,
                                       o->heads,
                                       o->kv_heads,
                                       r->n,
                                       o->head_dim,
                                       r->window,
                                       r->globals,
                                       r->plan_ms,
                                       r->time.ms_median,
                                       r->time.ms_min,
                                       r->time.ms_max,
                                       r->time.wall_ms,
                                       r->gflops,
                                       r->peak_gflops,
                                       r->pct_peak,
                                       r->speedup,
                                       (double)r->bytes,
                                       r->gbps,
                                       r->copy_gbps,
                                       r->pct_copy,
                                       r->peak_min,
                                       r->peak_max};
    snprintf(fields[COL_DEVICE], FIELD_SIZE, "%s", r->label);
    snprintf(fields[COL_PATTERN], FIELD_SIZE, "%s", pattern_names[r->pattern]);
    snprintf(fields[COL_DTYPE], FIELD_SIZE, "%s", dtype_names[o->dtype]);
    for (int c = COL_FIRST_NUMBER; c < COL_COUNT; c++)
        snprintf(fields[c], FIELD_SIZE, "%.*f", decimals[c], numbers[c]);
    if (r->speedup <= 0.0)
        fields[COL_SPEEDUP][0] = '\0';
}

static int view_column(const table_view *view, int c)
{
    return view->columns != NULL ? view->columns[c] : c;
}

/* Names left-aligned, numbers right-aligned, each column as wide as its widest entry. */
static void print_table(const bench_results *r, const table_view *view)
{
    static char fields[COL_COUNT][FIELD_SIZE];
    int width[COL_COUNT];
    for (int c = 0; c < view->count; c++)
        width[c] = (int)strlen(view->headers[c]);
    for (size_t i = 0; i < r->num_rows; i++) {
        row_fields(r->o, &r->rows[i], fields);
        for (int c = 0; c < view->count; c++) {
            const int len = (int)strlen(fields[view_column(view, c)]);
            width[c] = len > width[c] ? len : width[c];
        }
    }
    for (size_t i = 0; i <= r->num_rows; i++) { /* i == 0: the header */
        if (i > 0)
            row_fields(r->o, &r->rows[i - 1], fields);
        for (int c = 0; c < view->count; c++) {
            const int column = view_column(view, c);
            printf(c + 1 < view->count ? "%*s  " : "%*s\n", column < COL_FIRST_NUMBER ? -width[c] : width[c],
                   i > 0 ? fields[column] : view->headers[c]);
        }
    }
}

static void print_json(const bench_results *r)
{
    static char fields[COL_COUNT][FIELD_SIZE];
    for (size_t i = 0; i < r->num_rows; i++) {
        row_fields(r->o, &r->rows[i], fields);
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

static void print_csv(const bench_results *r)
{
    static char fields[COL_COUNT][FIELD_SIZE];
    for (int c = 0; c < COL_COUNT; c++)
        printf(c + 1 < COL_COUNT ? "%s," : "%s\n", column_names[c]);
    for (size_t i = 0; i < r->num_rows; i++) {
        row_fields(r->o, &r->rows[i], fields);
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

void results_print(const bench_results *r)
{
    if (r->o->format == FORMAT_JSON)
        print_json(r);
    else if (r->o->format == FORMAT_CSV)
        print_csv(r);
    else if (r->num_rows > 0)
        print_table(r, r->o->format == FORMAT_BRIEF ? &brief_view : &full_view);
}

/* The SVG plot: two log-log panels (time and GFLOP/s against N), colour by device, dashes by
 * pattern, whole powers of 2 and 10 on the axes. */
#include "plot.h"

#include <math.h>
#include <string.h>

#include "exit_status.h"

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

static double metric(const bench_row *row, int gflops)
{
    return gflops ? row->gflops : row->time.ms_median;
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
static svg_panel panel_for(const bench_results *r, double left, int gflops)
{
    double n_lo = HUGE_VAL, n_hi = 0.0, v_lo = HUGE_VAL, v_hi = 0.0;
    for (size_t i = 0; i < r->num_rows; i++) {
        const double v = metric(&r->rows[i], gflops);
        if (v > 0.0) { /* nothing else has a place on a log axis */
            n_lo = fmin(n_lo, r->rows[i].n);
            n_hi = fmax(n_hi, r->rows[i].n);
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
static int series_point(const bench_row *row, const svg_panel *p, int device, int pattern, double *x, double *y)
{
    if (row->device != device || (int)row->pattern != pattern || metric(row, p->gflops) <= 0.0)
        return 0;
    *x = panel_x(p, row->n);
    *y = panel_y(p, metric(row, p->gflops));
    return 1;
}

/* `line` styles the polyline; the markers are filled with `color`. */
static void svg_series(FILE *f, const bench_results *r, const svg_panel *p, int device, int pattern, const char *line,
                       const char *color)
{
    double x, y;
    fprintf(f, "<polyline fill=\"none\" %s points=\"", line);
    for (size_t i = 0; i < r->num_rows; i++)
        if (series_point(&r->rows[i], p, device, pattern, &x, &y))
            fprintf(f, "%.1f,%.1f ", x, y);
    fputs("\"/>\n", f);
    for (size_t i = 0; i < r->num_rows; i++)
        if (series_point(&r->rows[i], p, device, pattern, &x, &y))
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x, y, color);
}

/* Colour by device, dashes by pattern; the legend under the panels in two columns. */
int plot_write(const bench_results *r, FILE *f)
{
    static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                         "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    static const char *const dashes[] = {"none",     "8 4", "2 3",     "8 3 2 3", "12 3 2 3 2 3",
                                         "12 4 4 4", "1 2", "6 2 1 2", "4 4",     "10 2 2 2 2 2"};
    _Static_assert(sizeof dashes / sizeof dashes[0] == PATTERN_COUNT, "a dash style for every pattern");
    const svg_panel panels[2] = {panel_for(r, 80.0, 0), panel_for(r, 620.0, 1)};
    const char *labels[MAX_DEVICES + 1] = {0}; /* by device index; the baseline last */
    int series = 0, seen[MAX_DEVICES + 1][PATTERN_COUNT] = {{0}};
    for (size_t i = 0; i < r->num_rows; i++) {
        const bench_row *row = &r->rows[i];
        series += !seen[row->device][row->pattern];
        seen[row->device][row->pattern] = 1;
        labels[row->device] = row->label;
    }
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1100\" "
            "height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" "
            "fill=\"white\"/>\n<text x=\"550\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">clattn bench:",
            LEGEND_TOP + 20.0 * ((series + 1) / 2) + 20.0);
    const char *separator = " ";
    for (int d = 0; d <= r->baseline; d++)
        if (labels[d] != NULL) {
            fputs(separator, f);
            xml_text(f, labels[d]);
            separator = ", ";
        }
    fprintf(f,
            "</text>\n<text x=\"550\" y=\"48\" text-anchor=\"middle\">B=%d H=%d Hkv=%d D=%d, median of %d runs"
            "</text>\n",
            r->o->batch, r->o->heads, r->o->kv_heads, r->o->head_dim, r->o->repeat);
    svg_axes(f, &panels[0], "time (ms)");
    svg_axes(f, &panels[1], "GFLOP/s");
    for (int d = 0, entry = 0; d <= r->baseline; d++)
        for (int p = 0; p < PATTERN_COUNT; p++) {
            if (!seen[d][p])
                continue;
            char line[96];
            snprintf(line, sizeof line, "stroke=\"%s\" stroke-width=\"1.5\" stroke-dasharray=\"%s\"", colors[d % 8],
                     dashes[p]);
            svg_series(f, r, &panels[0], d, p, line, colors[d % 8]);
            svg_series(f, r, &panels[1], d, p, line, colors[d % 8]);
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

/* Tuned tiles in the cache directory (`clattn tune --save`): saved tiles are what a plan runs with
 * (and it still matches the reference), forced tiles come first, and a corrupt file or another
 * device's or driver's falls back to the table with a note to the log, never a failed plan. GPU
 * tiles out of the kernels' ranges are neither saved nor planned with. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define TOLERANCE 2e-4

/* Odd sizes, so that the saved tiles (5 rows, 3 tiles per item) end mid-tile. */
static const clattn_problem problem = {.batch = 1, .heads = 2, .q_len = 67, .head_dim = 32};
/* No table row has 5 rows, so these can only come from the file. */
static const clattn_tiles saved = {.cpu_variant = 1, .rows = 5, .kw = 16, .item_tiles = 3, .lanes = 1};

static char log_text[4096]; /* the log callback's lines since the last reset, joined by " | " */

static void log_line(void *user, const char *message)
{
    (void)user;
    const size_t len = strlen(log_text);
    snprintf(log_text + len, sizeof log_text - len, "%s%s", len ? " | " : "", message);
}

static int same_tiles(const clattn_tiles *a, const clattn_tiles *b)
{
    return a->cpu_variant == b->cpu_variant && a->rows == b->rows && a->kw == b->kw &&
           (!a->cpu_variant || (a->item_tiles == b->item_tiles && a->lanes == b->lanes)) &&
           (a->cpu_variant || (a->bm == b->bm && a->bn == b->bn && a->tm == b->tm && a->tn == b->tn));
}

/* The tiles of a fresh plan of `problem` on dev (created with the log reset first). */
static int plan_tiles(clattn_context *dev, clattn_tiles *out)
{
    log_text[0] = '\0';
    return harness_plan_tiles(dev, &problem, out);
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    const int ok = fwrite(text, 1, strlen(text), f) == strlen(text);
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* The saved file's text with the line starting `key=` replaced by `line` ("" drops it). */
static void edit_line(const char *text, const char *key, const char *line, char *out, size_t size)
{
    out[0] = '\0';
    const size_t key_len = strlen(key);
    for (const char *p = text; *p != '\0';) {
        const size_t len = strcspn(p, "\n");
        const size_t used = strlen(out);
        if (strncmp(p, key, key_len) == 0 && p[key_len] == '=')
            snprintf(out + used, size - used, "%s%s", line, line[0] ? "\n" : "");
        else
            snprintf(out + used, size - used, "%.*s\n", (int)len, p);
        p += len + (p[len] == '\n');
    }
}

typedef struct {
    const char *what;
    const char *key;  /* the line replaced; NULL: the whole file is `line` */
    const char *line; /* the replacement */
    const char *why;  /* what the log note must say */
} corrupt_case;

static const corrupt_case corrupt_cases[] = {
    {"another device", "device", "device=Some Other Device", "is not this context's"},
    {"another driver", "driver", "driver=0.0-old", "is not this context's"},
    {"another vendor", "vendor", "vendor=Nobody", "is not this context's"},
    {"rows out of range", "rows", "rows=99", "rows = 99 is outside"},
    {"item_tiles out of range", "item_tiles", "item_tiles=33", "item_tiles = 33 is outside"},
    {"lanes out of range", "lanes", "lanes=2", "lanes = 2 is outside"},
    {"direct out of range", "direct", "direct=2", "direct = 2 is outside"},
    {"large_grf out of range", "large_grf", "large_grf=-1", "large_grf = -1 is outside"},
    {"a file from before large_grf", "large_grf", "", "key 'large_grf' missing"},
    {"a CPU kw the kernel lacks", "kw", "kw=24", "kw = 24"},
    {"not an integer", "rows", "rows=5x", "is not an integer"},
    {"a sign", "rows", "rows=+5", "is not an integer"},
    {"an unknown key", "bm", "colour=blue", "unknown key 'colour'"},
    {"a missing key", "item_tiles", "", "key 'item_tiles' missing"},
    {"a repeated key", "rows", "rows=5\nrows=6", "key 'rows' repeated"},
    {"a line without '='", "rows", "rows 5", "line 6: not key=value"},
    {"an empty file", NULL, "", "empty"},
    {"garbage", NULL, "\x7f\x45\x4c\x46\x02\x01", "line 1: not key=value"},
};

/* Each corrupt variant of the saved file: the plan still succeeds, with the table's tiles, and the
 * log names the file and the reason. */
static void check_corrupt(clattn_context *dev, const char *path, const char *good, const clattn_tiles *table)
{
    for (size_t c = 0; c < sizeof corrupt_cases / sizeof corrupt_cases[0]; c++) {
        const corrupt_case *k = &corrupt_cases[c];
        char text[2048];
        if (k->key != NULL)
            edit_line(good, k->key, k->line, text, sizeof text);
        else
            snprintf(text, sizeof text, "%s", k->line);
        clattn_tiles t = {0};
        const int wrote = write_text(path, text) == 0;
        const int status = wrote ? plan_tiles(dev, &t) : -1;
        check(wrote && status == CLATTN_STATUS_OK && same_tiles(&t, table) && strstr(log_text, path) != NULL &&
                  strstr(log_text, k->why) != NULL,
              "%s: the table's tiles (rows %d, kw %d), log: %s", k->what, t.rows, t.kw,
              log_text[0] ? log_text : "(nothing)");
    }
}

/* Saves, uses, overrides and corrupts the tuned tiles of dev's device in cache_dir. */
static void check_device(const char *spec, const char *cache_dir, clattn_context *ref)
{
    clattn_context *dev = NULL;
    const clattn_context_desc desc = {.device = spec, .cache_dir = cache_dir, .log = log_line};
    if (!check(clattn_context_create(&desc, &dev) == CLATTN_STATUS_OK, "device %s: context with a cache directory",
               spec))
        return;
    printf("device %s: %s\n", spec, clattn_context_device_name(dev));
    clattn_tiles table = {0}, t = {0};
    int status = plan_tiles(dev, &table);
    check(status == CLATTN_STATUS_OK && log_text[0] == '\0',
          "no saved file: the table's tiles (rows %d, kw %d), nothing logged", table.rows, table.kw);

    char path[4096] = "";
    status = clattn_context_save_tiles(dev, &saved, path, sizeof path);
    check(status == CLATTN_STATUS_OK && strstr(path, cache_dir) == path, "save: %s (%s)", path,
          clattn_context_message(dev));
    status = plan_tiles(dev, &t);
    check(status == CLATTN_STATUS_OK && same_tiles(&t, &saved) && log_text[0] == '\0',
          "the plan runs with the saved tiles: rows %d, kw %d, item_tiles %d", t.rows, t.kw, t.item_tiles);
    double err = INFINITY;
    status = harness_compare(dev, ref, &problem, NULL, 1, &err);
    check(status == CLATTN_STATUS_OK && err <= TOLERANCE, "saved tiles match the reference: max error %.3g", err);

    const clattn_tiles forced = {.cpu_variant = 1, .rows = 3, .kw = 8, .item_tiles = 2};
    clattn_context_force_tiles(dev, &forced);
    status = plan_tiles(dev, &t);
    check(status == CLATTN_STATUS_OK && same_tiles(&t, &forced), "forced tiles come before saved ones: rows %d, kw %d",
          t.rows, t.kw);
    clattn_context_force_tiles(dev, NULL);

    char *good = NULL;
    size_t size = 0;
    FILE *f = fopen(path, "rb");
    if (f != NULL && (good = calloc(4096, 1)) != NULL)
        size = fread(good, 1, 4095, f);
    if (f != NULL)
        fclose(f);
    if (check(size > 0 && strstr(good, "rows=5\n") != NULL, "the saved file reads back (%zu bytes)", size))
        check_corrupt(dev, path, good, &table);
    free(good);

    const clattn_tiles bad = {.cpu_variant = 1, .rows = 17, .kw = 16};
    status = clattn_context_save_tiles(dev, &bad, NULL, 0);
    check(status == CLATTN_STATUS_UNSUPPORTED && strstr(clattn_context_message(dev), "rows = 17") != NULL,
          "saving rows 17: %s", clattn_context_message(dev));
    clattn_context_free(dev);

    /* A cache directory that does not exist yet is created by the first save, parents and all;
     * one under a regular file cannot be. */
    char missing[4200] = "", nested[4200] = "", unwritable[8400] = "";
    snprintf(missing, sizeof missing, "%s/new/cache", cache_dir);
    if (clattn_context_create(&(clattn_context_desc){.device = spec, .cache_dir = missing}, &dev) == 0) {
        status = clattn_context_save_tiles(dev, &saved, nested, sizeof nested);
        FILE *created = status == CLATTN_STATUS_OK ? fopen(nested, "rb") : NULL;
        check(created != NULL && strstr(nested, missing) == nested, "saving into a missing directory creates it: %s",
              status == CLATTN_STATUS_OK ? nested : clattn_context_message(dev));
        if (created != NULL)
            fclose(created);
        clattn_context_free(dev);
    }
    snprintf(unwritable, sizeof unwritable, "%s/sub", nested);
    if (nested[0] != '\0' &&
        clattn_context_create(&(clattn_context_desc){.device = spec, .cache_dir = unwritable}, &dev) == 0) {
        status = clattn_context_save_tiles(dev, &saved, NULL, 0);
        check(status == CLATTN_STATUS_CACHE_WRITE_FAILED, "saving under a regular file: %s",
              clattn_context_message(dev));
        clattn_context_free(dev);
    }
}

/* The contexts that cannot save: no cache directory, and the reference path. */
static void check_cannot_save(const char *spec, const char *cache_dir, clattn_context *ref)
{
    clattn_context *dev = NULL;
    if (getenv("CLATTN_CACHE_DIR") == NULL &&
        clattn_context_create(&(clattn_context_desc){.device = spec}, &dev) == CLATTN_STATUS_OK) {
        const int status = clattn_context_save_tiles(dev, &saved, NULL, 0);
        check(status == CLATTN_STATUS_UNSUPPORTED && clattn_context_cache_dir(dev) == NULL, "no cache directory: %s",
              clattn_context_message(dev));
        clattn_context_free(dev);
    } else
        printf("skip: no-cache-directory check ($CLATTN_CACHE_DIR is set)\n");
    clattn_context *ref_cached = NULL;
    if (clattn_context_create(&(clattn_context_desc){.device = "reference", .cache_dir = cache_dir}, &ref_cached) ==
        CLATTN_STATUS_OK) {
        const int status = clattn_context_save_tiles(ref_cached, &saved, NULL, 0);
        check(status == CLATTN_STATUS_UNSUPPORTED, "the reference path saves no tiles: %s",
              clattn_context_message(ref_cached));
        clattn_context_free(ref_cached);
    }
    clattn_plan *plan = NULL;
    clattn_tiles t;
    if (clattn_plan_create(ref, &problem, &plan) == CLATTN_STATUS_OK)
        check(clattn_plan_tiles(plan, &t) == CLATTN_STATUS_UNSUPPORTED, "a reference plan has no tiles");
    clattn_plan_free(plan);
}

/* Empties and removes the temporary cache directory (the tiles files, program binaries and the
 * directories a save created). */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && remove(path) != 0)
            remove_dir(path); /* a directory that is not empty */
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

/* GPU tiles with an option or a block out of range: saving them and planning with them forced both
 * fail with CLATTN_STATUS_UNSUPPORTED, the message naming what is wrong. */
static void check_out_of_range(const char *spec, const char *cache_dir)
{
#define GPU_32X32(...)                                                                                                 \
    {                                                                                                                  \
        .cpu_variant = 0, .rows = 1, .bm = 32, .bn = 32, .tm = 4, .tn = 4, __VA_ARGS__                                 \
    }
    static const struct {
        const char *what; /* in the message */
        clattn_tiles tiles;
    } cases[] = {
        {"stage = 9", GPU_32X32(.stage = 9)},
        {"shuffle = 3", GPU_32X32(.shuffle = 3)},
        {"direct = 2", GPU_32X32(.direct = 2)},
        {"large_grf = 2", GPU_32X32(.large_grf = 2)},
        {"async = -1", GPU_32X32(.async = -1)},
        {"tm = 3", {.cpu_variant = 0, .rows = 1, .bm = 32, .bn = 32, .tm = 3, .tn = 4}},
    };
#undef GPU_32X32
    clattn_context *dev = NULL;
    if (!check(clattn_context_create(&(clattn_context_desc){.device = spec, .cache_dir = cache_dir}, &dev) == 0,
               "%s: context: %s", spec, clattn_context_message(NULL)))
        return;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int save = clattn_context_save_tiles(dev, &cases[c].tiles, NULL, 0);
        check(save == CLATTN_STATUS_UNSUPPORTED && strstr(clattn_context_message(dev), cases[c].what) != NULL,
              "%s: saving GPU tiles with %s: %s", spec, cases[c].what, clattn_context_message(dev));
        clattn_context_force_tiles(dev, &cases[c].tiles);
        clattn_plan *plan = NULL;
        const int status = clattn_plan_create(dev, &problem, &plan);
        check(status == CLATTN_STATUS_UNSUPPORTED && strstr(clattn_context_message(dev), cases[c].what) != NULL,
              "%s: planning with GPU tiles with %s forced: %s", spec, cases[c].what, clattn_context_message(dev));
        clattn_plan_free(plan);
        clattn_context_force_tiles(dev, NULL);
    }
    clattn_context_free(dev);
}

int main(void)
{
    char specs[HARNESS_MAX_DEVICES][16];
    const int ndev = harness_devices(specs, HARNESS_MAX_DEVICES);
    if (ndev == 0)
        return check_skip(HARNESS_NO_DEVICE);
    clattn_context *ref = NULL;
    if (!check(clattn_context_create(&(clattn_context_desc){.device = "reference"}, &ref) == 0, "reference context"))
        return check_exit();
    for (int d = 0; d < ndev; d++) {
        char dir[] = "/tmp/clattn-tuning-XXXXXX"; /* a directory of its own per device */
        if (!check(mkdtemp(dir) != NULL, "temporary cache directory"))
            break;
        check_device(specs[d], dir, ref);
        check_cannot_save(specs[d], dir, ref);
        check_out_of_range(specs[d], dir);
        remove_dir(dir);
    }
    clattn_context_free(ref);
    return check_exit();
}

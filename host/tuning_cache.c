/* The tuned-tiles file of a device and driver in the cache directory (clattn-tiles-<hash>.txt):
 * `key=value` lines naming the device, vendor and driver they were measured on and each tile
 * field. Parsed strictly, since a wrong tile compiles into a wrong or slow kernel: an unknown,
 * repeated or missing key, another device's name or an out-of-range value rejects the file. */
#include "tuning_cache.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_file.h"
#include "tuning.h"

#define TILES_FILE_MAX 4096 /* a file written by clattn_context_save_tiles takes well under 1 KiB */

/* The file's keys: first the device's identity, then the tile fields (clattn__tile_fields, with
 * their ranges). */
enum { KEY_DEVICE, KEY_VENDOR, KEY_DRIVER, KEY_FIRST_TILE, KEY_COUNT = KEY_FIRST_TILE + CLATTN_TILE_FIELDS };
static const char *const device_keys[KEY_FIRST_TILE] = {"device", "vendor", "driver"};

static const char *key_name(int key)
{
    return key < KEY_FIRST_TILE ? device_keys[key] : clattn__tile_fields[key - KEY_FIRST_TILE].name;
}

static int *tile_field(clattn_tiles *t, int key)
{
    return (int *)((char *)t + clattn__tile_fields[key - KEY_FIRST_TILE].offset);
}

static int tile_value(const clattn_tiles *t, int key)
{
    return *tile_field((clattn_tiles *)t, key);
}

static const char *device_field(const clattn__device_caps *caps, int key)
{
    return key == KEY_DEVICE ? caps->name : key == KEY_VENDOR ? caps->vendor : caps->driver;
}

/* 0 when every field is in range (the CPU variant's kw is 8, 16 or 32; the GPU variant's blocks
 * divide its tiles: clattn__tiles_check), else -1 with why. */
static int check_tiles(const clattn_tiles *t, char *why, size_t why_size)
{
    for (int k = KEY_FIRST_TILE; k < KEY_COUNT; k++) {
        const int value = tile_value(t, k), min = clattn__tile_fields[k - KEY_FIRST_TILE].min,
                  max = clattn__tile_fields[k - KEY_FIRST_TILE].max;
        if (value < min || value > max) {
            snprintf(why, why_size, "%s = %d is outside [%d, %d]", key_name(k), value, min, max);
            return -1;
        }
    }
    if (t->cpu_variant && t->kw != 8 && t->kw != 16 && t->kw != 32) {
        snprintf(why, why_size, "kw = %d: the CPU variant takes 8, 16 or 32", t->kw);
        return -1;
    }
    return clattn__tiles_check(t, why, why_size);
}

/* A decimal int and nothing else (no sign but '-', no spaces). */
static int parse_int(const char *text, int *out)
{
    if (!(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')))
        return -1;
    char *end = NULL;
    errno = 0;
    const long value = strtol(text, &end, 10);
    if (*end != '\0' || errno == ERANGE || value < INT_MIN || value > INT_MAX)
        return -1;
    *out = (int)value;
    return 0;
}

/* One `key=value` line into t or against caps; seen[] counts the keys. */
static int parse_line(const clattn__device_caps *caps, char *line, int seen[KEY_COUNT], clattn_tiles *t, char *why,
                      size_t why_size)
{
    char *eq = strchr(line, '=');
    if (eq == NULL) {
        snprintf(why, why_size, "not key=value");
        return -1;
    }
    *eq = '\0';
    const char *value = eq + 1;
    int key = 0;
    while (key < KEY_COUNT && strcmp(line, key_name(key)) != 0)
        key++;
    if (key == KEY_COUNT) {
        snprintf(why, why_size, "unknown key '%.64s'", line);
        return -1;
    }
    if (seen[key]++) {
        snprintf(why, why_size, "key '%s' repeated", key_name(key));
        return -1;
    }
    if (key < KEY_FIRST_TILE) {
        if (strcmp(value, device_field(caps, key)) == 0)
            return 0;
        snprintf(why, why_size, "%s '%.200s' is not this context's ('%.200s')", key_name(key), value,
                 device_field(caps, key));
        return -1;
    }
    if (parse_int(value, tile_field(t, key)) != 0) {
        snprintf(why, why_size, "%s = '%.64s' is not an integer", key_name(key), value);
        return -1;
    }
    return 0;
}

/* The whole file: lines of key=value, blank lines and '#' comments. 0, or -1 with why. */
static int parse_tiles(const clattn__device_caps *caps, char *text, clattn_tiles *out, char *why, size_t why_size)
{
    int seen[KEY_COUNT] = {0}, line_number = 0;
    clattn_tiles t = {0};
    for (char *line = text; *line != '\0';) {
        char *end = line + strcspn(line, "\n");
        const int last = *end == '\0';
        *end = '\0';
        line_number++;
        char what[CLATTN_MESSAGE_SIZE / 2];
        if (line[0] != '\0' && line[0] != '#' && parse_line(caps, line, seen, &t, what, sizeof what) != 0) {
            snprintf(why, why_size, "line %d: %s", line_number, what);
            return -1;
        }
        line = last ? end : end + 1;
    }
    for (int k = 0; k < KEY_COUNT; k++)
        if (!seen[k]) {
            snprintf(why, why_size, "key '%s' missing", key_name(k));
            return -1;
        }
    if (check_tiles(&t, why, why_size) != 0)
        return -1;
    *out = t;
    return 0;
}

/* <cache_dir>/clattn-tiles-<hash of the device name, vendor and driver>.txt */
static void tiles_path(const clattn_context *ctx, char *path, size_t size)
{
    const uint64_t h = clattn__hash_device(CLATTN_HASH_SEED, &ctx->caps);
    snprintf(path, size, "%s/clattn-tiles-%016llx.txt", ctx->cache_dir, (unsigned long long)h);
}

int clattn__tuning_cache_load(const clattn_context *ctx, clattn_tiles *out)
{
    if (ctx->cache_dir == NULL || ctx->reference)
        return 0;
    char path[4096], why[CLATTN_MESSAGE_SIZE] = "";
    tiles_path(ctx, path, sizeof path);
    size_t size = 0;
    int absent = 0;
    char *text = (char *)clattn__read_file(path, TILES_FILE_MAX, &size, &absent);
    if (text == NULL) {
        if (!absent)
            clattn__context_log(ctx,
                                "clattn: ignoring tuned tiles %s: unreadable, empty or over %d bytes; using the "
                                "tile table",
                                path, TILES_FILE_MAX);
        return 0;
    }
    int found = 0;
    if (strlen(text) != size)
        snprintf(why, sizeof why, "a NUL byte");
    else
        found = parse_tiles(&ctx->caps, text, out, why, sizeof why) == 0;
    for (char *c = why; *c != '\0'; c++)
        *c = (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c; /* the file's bytes, quoted into a log line */
    if (!found)
        clattn__context_log(ctx, "clattn: ignoring tuned tiles %s: %s; using the tile table", path, why);
    free(text);
    return found;
}

int clattn_context_save_tiles(clattn_context *ctx, const clattn_tiles *tiles, char *path, size_t path_size)
{
    if (ctx == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    clattn__error err = {{0}};
    char why[256] = "", file[4096] = "", text[TILES_FILE_MAX];
    int status = CLATTN_STATUS_OK;
    if (tiles == NULL)
        status = clattn__fail(&err, CLATTN_STATUS_NULL_ARGUMENT, "tiles is NULL");
    else if (ctx->reference)
        status = clattn__fail(&err, CLATTN_STATUS_UNSUPPORTED, "the reference path has no tiles");
    else if (ctx->cache_dir == NULL)
        status = clattn__fail(&err, CLATTN_STATUS_UNSUPPORTED,
                              "no cache directory: set clattn_context_desc.cache_dir or $CLATTN_CACHE_DIR");
    else if (check_tiles(tiles, why, sizeof why) != 0)
        status = clattn__fail(&err, CLATTN_STATUS_UNSUPPORTED, "tiles: %s", why);
    if (status == CLATTN_STATUS_OK) {
        tiles_path(ctx, file, sizeof file);
        size_t len = (size_t)snprintf(
            text, sizeof text, "# clattn tuned tiles (clattn tune --save), read by plans on this device and driver\n");
        for (int k = 0; k < KEY_COUNT && len < sizeof text; k++)
            len += (size_t)(k < KEY_FIRST_TILE ? snprintf(text + len, sizeof text - len, "%s=%s\n", key_name(k),
                                                          device_field(&ctx->caps, k))
                                               : snprintf(text + len, sizeof text - len, "%s=%d\n", key_name(k),
                                                          tile_value(tiles, k)));
        if (len >= sizeof text || clattn__write_file(file, text, len) != 0)
            status = clattn__fail(&err, CLATTN_STATUS_CACHE_WRITE_FAILED, "cache_dir '%s': could not write %s",
                                  ctx->cache_dir, file);
    }
    if (path != NULL && path_size > 0)
        snprintf(path, path_size, "%s", file);
    return clattn__context_report(ctx, status, &err);
}

/* Files in the context's cache directory, shared by the program cache (host/program.c) and the
 * tuned tiles (host/tuning_cache.c): names keyed by a hash, whole-file reads, and writes to a
 * temporary file renamed into place, so that a reader never sees half a file. */
#ifndef CLATTN_CACHE_FILE_H
#define CLATTN_CACHE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "context.h"

#define CLATTN_HASH_SEED 14695981039346656037ull /* FNV-1a's offset basis */

/* FNV-1a of text folded into h, then a separator, so that "ab" + "c" differs from "a" + "bc". */
uint64_t clattn__hash_text(uint64_t h, const char *text);

/* h folded with the device's name, vendor and driver version: a key changes with the driver. */
uint64_t clattn__hash_device(uint64_t h, const clattn__device_caps *caps);

/* The whole file at path, NUL-terminated (not counted in *size), for the caller to free; NULL
 * when it is absent (then *absent = 1 where absent is not NULL), unreadable, empty or longer
 * than max_size bytes. */
unsigned char *clattn__read_file(const char *path, size_t max_size, size_t *size, int *absent);

/* Writes size bytes to path through a temporary file beside it and a rename, first creating the
 * directories above path that are missing; returns 0, or -1 with no file left behind (directories
 * it created stay). */
int clattn__write_file(const char *path, const void *data, size_t size);

#endif

/* Tuned tiles on disk: `clattn tune --save` stores the winning tiles of a device and driver in
 * the context's cache directory, and plan creation reads them before the table. */
#ifndef CLATTN_TUNING_CACHE_H
#define CLATTN_TUNING_CACHE_H

#include "context.h"

/* The tiles saved for ctx's device and driver: 1 with *out set, or 0 when there is no cache
 * directory, no file, or a file that does not parse (then a note says why, through the log
 * callback, and the caller falls back to the table). Never fails otherwise. */
int clattn__tuning_cache_load(const clattn_context *ctx, clattn_tiles *out);

#endif

/* Kernel variant and tile sizes for a device: a table keyed by device name, then vendor, then a
 * default per device type, clamped to the device's limits. The one place where device
 * capabilities turn into -D build options. */
#ifndef CLATTN_TUNING_H
#define CLATTN_TUNING_H

#include <stddef.h>

#include "context.h"

/* Keys per panel of cl/pack_keys.cl, which is also the CPU variant's chunk of the key loop:
 * 32 halves the per-chunk softmax and accumulator traffic of 16 (clattn bench, dense). */
#define CLATTN_KEY_PANEL 32

/* Decode (CPU variant, at most CLATTN_SPLIT_MAX_QUERIES query rows, no global rows) splits the
 * keys so that each compute unit gets CLATTN_SPLIT_ITEMS_PER_CU work-items, each split at least
 * CLATTN_SPLIT_MIN_KEYS keys long. */
#define CLATTN_SPLIT_MAX_QUERIES 4
#define CLATTN_SPLIT_ITEMS_PER_CU 4
#define CLATTN_SPLIT_MIN_KEYS 256

/* Chooses tiles for head dims d (Q, K) and dv (V) and q_len query rows on a context's device
 * (its forced tiles, else the table); fails with
 * CLATTN_STATUS_DEVICE_LIMIT when no tile fits its work-group size or local memory. */
int clattn_choose_tiles(const clattn_context *ctx, int d, int dv, int q_len, clattn_tiles *out, clattn_error *err);

/* Bytes of __local memory the attention kernel uses with these tiles. */
size_t clattn_tiles_local_bytes(const clattn_tiles *tiles, int d, int dv);

/* Build options of cl/attention.cl for these tiles. */
void clattn_attention_options(const clattn_tiles *tiles, int d, int dv, char *buf, size_t size);

/* Build options of cl/pack_keys.cl for head dim d. */
void clattn_pack_options(int d, char *buf, size_t size);

#endif

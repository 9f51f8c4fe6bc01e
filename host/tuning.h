/* Kernel variant and tile sizes for a device: a table keyed by device name, then vendor, then a
 * default per device type, clamped to the device's limits. The one place where device
 * capabilities turn into -D build options. */
#ifndef CLATTN_TUNING_H
#define CLATTN_TUNING_H

#include <stddef.h>

#include "context.h"

/* Keys per panel of cl/pack_keys.cl, which is also the CPU variant's chunk of the key loop. A
 * longer chunk spreads the per-chunk softmax and accumulator traffic over more keys, but a
 * band's edge chunks also compute keys it masks: 64 when min(L + R + 1, Nk) is at least
 * CLATTN_WIDE_BAND (dense or causal from Nk = 2048 on), else 32. p is normalized. (clattn
 * bench on AVX2: dense N=4096 138 -> 148 GFLOP/s from 32 to 64; window 256 at N=16384
 * 116 -> 101.) */
#define CLATTN_WIDE_BAND 2048
int clattn_key_chunk(const clattn_problem *p);

/* Decode (CPU variant, at most CLATTN_SPLIT_MAX_QUERIES query rows, no global rows) splits the
 * keys so that each compute unit gets CLATTN_SPLIT_ITEMS_PER_CU work-items, each split at least
 * CLATTN_SPLIT_MIN_KEYS keys long. */
#define CLATTN_SPLIT_MAX_QUERIES 4
#define CLATTN_SPLIT_ITEMS_PER_CU 4
#define CLATTN_SPLIT_MIN_KEYS 256

/* Chooses tiles for head dims d (Q, K) and dv (V) on a context's device (its forced tiles, else
 * the table), with at most max_rows rows per CPU work-item (the rows a tile can hold: Nq, or a
 * decode tile's query group); fails with CLATTN_STATUS_DEVICE_LIMIT when no tile fits the
 * device's work-group size or local memory. */
int clattn_choose_tiles(const clattn_context *ctx, int d, int dv, int max_rows, clattn_tiles *out,
                        clattn_error *err);

/* Bytes of __local memory the attention kernel uses with these tiles. */
size_t clattn_tiles_local_bytes(const clattn_tiles *tiles, int d, int dv);

/* Build options of cl/attention.cl for these tiles and key chunk kc. */
void clattn_attention_options(const clattn_tiles *tiles, int d, int dv, int kc, char *buf, size_t size);

/* Build options of cl/pack_keys.cl for head dim d and panels of kc keys. */
void clattn_pack_options(int d, int kc, char *buf, size_t size);

#endif

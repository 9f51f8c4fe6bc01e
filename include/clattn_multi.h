/* clattn over several OpenCL devices of one machine in one call: a context per device, each with
 * its own queue and plan, and the batch x heads of a problem split across them in proportion to
 * a weight (given, or measured at plan creation). SPEC.md, "Split over several devices or
 * processes": the result is that of one call over the whole tensors. */
#ifndef CLATTN_MULTI_H
#define CLATTN_MULTI_H

#include "clattn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Multi-device context. Thread safety: one thread at a time uses a multi-device context and its
 * plans (the device contexts inside may still be shared, as clattn.h says of contexts).
 * ------------------------------------------------------------------------------------------- */
typedef struct clattn_multi clattn_multi;

typedef struct {
    /* A comma-separated list of device specs, each one of: "P:D" (platform, device index), "gpu"
     * or "cpu" (the first of that type), "gpu:*" or "cpu:*" (every device of that type), "*"
     * (every OpenCL device). A device may be listed more than once: each entry is a context of
     * its own. NULL or "": "*". */
    const char *devices;
    const char *cache_dir; /* as clattn_context_desc.cache_dir, for every device */
    clattn_log_fn log;     /* as clattn_context_desc.log, for every device */
    void *log_user;
} clattn_multi_desc;

CLATTN_API int clattn_multi_create(const clattn_multi_desc *desc, clattn_multi **out);
CLATTN_API void clattn_multi_free(clattn_multi *multi); /* NULL is a no-op */

/* The last detailed message of a failed call on `multi` (its device contexts' included); "" when
 * none. With NULL: the message of this thread's last failed clattn_multi_create. */
CLATTN_API const char *clattn_multi_message(const clattn_multi *multi);
CLATTN_API int clattn_multi_device_count(const clattn_multi *multi);
/* Device i's context (0 <= i < count), owned by `multi`: for its name, queue and cl_context. */
clattn_context *clattn_multi_device(const clattn_multi *multi, int i);

/* ---------------------------------------------------------------------------------------------
 * Multi-device plan: the problem split over the devices along one dimension, the key/value heads
 * (each with its H/Hkv query heads) when Hkv >= B, else the batch. Device i gets a contiguous
 * range of that dimension, as large as its share of the weights allows (rounded; a device whose
 * share rounds to nothing gets no plan).
 * ------------------------------------------------------------------------------------------- */
typedef struct clattn_multi_plan clattn_multi_plan;

typedef enum {
    CLATTN_SPLIT_KV_HEADS = 1, /* device i's tensors: [B, its heads, N, D] */
    CLATTN_SPLIT_BATCH         /* device i's tensors: [its batch entries, H, N, D] */
} clattn_split_dim;

/* weights: one positive number per device (relative speeds); NULL measures them: each device
 * runs one unit of the problem (one batch entry or one key/value head group) twice on host
 * memory, the weight being the inverse of the second run's time. */
CLATTN_API int clattn_multi_plan_create(clattn_multi *multi, const clattn_problem *problem, const double *weights,
                                        clattn_multi_plan **out);
CLATTN_API void clattn_multi_plan_free(clattn_multi_plan *plan); /* NULL is a no-op */

/* Device i's share: the split dimension, and the first and count of its units (count 0: the
 * device does nothing). weight (may be NULL) receives the weight the split used. */
CLATTN_API int clattn_multi_plan_share(const clattn_multi_plan *plan, int i, clattn_split_dim *dim, int *first,
                                       int *count, double *weight);

/* Device i's own plan (NULL when its share is empty): the problem of its share, whose tensors
 * the per-device buffers of clattn_multi_plan_enqueue hold. */
clattn_plan *clattn_multi_plan_device_plan(const clattn_multi_plan *plan, int i);

/* Blocking, on the whole tensors in host memory (as clattn_plan_run_host takes them): every
 * device runs its share at the same time, one host thread each. */
CLATTN_API int clattn_multi_plan_run_host(clattn_multi_plan *plan, const clattn_host_tensors *tensors);

/* Asynchronous, on each device's own buffers: buffers[i] holds device i's share (the tensors of
 * clattn_multi_plan_device_plan(plan, i), in the problem's storage type with LSE in float32;
 * ignored for an empty share) and is enqueued on device i's queue. events (may be NULL) receives
 * one event per device, NULL for an empty share. */
CLATTN_API int clattn_multi_plan_enqueue(clattn_multi_plan *plan, const clattn_buffers *buffers, cl_event *events);

#ifdef __cplusplus
}
#endif
#endif

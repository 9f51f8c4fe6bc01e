/* The context object (device, queue, capabilities, program cache, log sink, last message),
 * shared by the files that compile programs and run plans. */
#ifndef CLATTN_CONTEXT_H
#define CLATTN_CONTEXT_H

#include <pthread.h>

#include "clattn_advanced.h"
#include "error.h"

typedef struct clattn__program_entry clattn__program_entry;

/* What the plans need to know of a device to choose kernels and tiles. */
typedef struct {
    char name[256];
    char vendor[256];
    char driver[128];
    cl_device_type type;
    cl_uint compute_units;
    size_t max_work_group;
    cl_ulong local_mem;
    cl_ulong max_alloc;
    cl_ulong global_mem;
    cl_uint native_floats; /* floats in the native vector (CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT) */
    int pocl;              /* POCL's (CL_DEVICE_VERSION names it): host/program.c */
    int warp_shuffle;      /* an NVIDIA GPU: warps of 32 and shfl.sync through inline PTX */
    int sm80;              /* an NVIDIA GPU of compute capability 8.0 or more: mma.sync on TF32 and
                            * cp.async (copies from global to __local memory) */
    int intel_gpu;         /* an Intel GPU: the large register file's build option (large_grf) */
} clattn__device_caps;

struct clattn_context {
    int reference; /* the double-precision host path; no OpenCL objects */
    cl_device_id device;
    cl_context cl;
    cl_command_queue queue;
    clattn__device_caps caps;
    char *cache_dir; /* NULL: no on-disk program cache */
    clattn_log_fn log;
    void *log_user;
    /* Two locks: a compile holds programs_lock for seconds, and reading the message must not
     * wait for it. */
    pthread_mutex_t programs_lock; /* guards programs */
    pthread_mutex_t message_lock;  /* guards message */
    char message[CLATTN_MESSAGE_SIZE];
    clattn__program_entry *programs;
    int tiles_forced; /* tests and `clattn tune`: forced_tiles instead of the table */
    clattn_tiles forced_tiles;
    clattn_split_tiles forced_split; /* tests and `clattn tune`: 0 fields take the defaults */
};

/* Records err's message as the context's last message and returns status (unchanged). */
int clattn__context_report(clattn_context *ctx, int status, const clattn__error *err);

/* Sends a line to the log callback, if any. */
void clattn__context_log(const clattn_context *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif

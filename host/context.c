/* Device selection ("cpu", "gpu", "P:D", "reference", $CLATTN_DEVICE), wrapping of a caller's
 * context and queue, the device capabilities plans rely on, and the last-message store. */
#include "context.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CL/cl_ext.h>

#include "devices.h"
#include "program.h"

static int query_caps(cl_device_id device, clattn__device_caps *caps, clattn__error *err)
{
    memset(caps, 0, sizeof *caps);
    cl_int rc = clGetDeviceInfo(device, CL_DEVICE_NAME, sizeof caps->name - 1, caps->name, NULL);
    if (rc == CL_SUCCESS)
        rc = clGetDeviceInfo(device, CL_DEVICE_VENDOR, sizeof caps->vendor - 1, caps->vendor, NULL);
    if (rc == CL_SUCCESS)
        rc = clGetDeviceInfo(device, CL_DRIVER_VERSION, sizeof caps->driver - 1, caps->driver, NULL);
    if (rc == CL_SUCCESS)
        rc = clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof caps->type, &caps->type, NULL);
    if (rc == CL_SUCCESS)
        rc = clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof caps->compute_units, &caps->compute_units,
                             NULL);
    if (rc == CL_SUCCESS)
        rc = clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof caps->max_work_group, &caps->max_work_group,
                             NULL);
    if (rc == CL_SUCCESS)
        rc = clGetDeviceInfo(device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof caps->local_mem, &caps->local_mem, NULL);
    if (rc == CL_SUCCESS)
        rc = clGetDeviceInfo(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof caps->max_alloc, &caps->max_alloc, NULL);
    if (rc == CL_SUCCESS)
        rc = clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof caps->global_mem, &caps->global_mem, NULL);
    if (rc == CL_SUCCESS)
        rc = clGetDeviceInfo(device, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof caps->native_floats,
                             &caps->native_floats, NULL);
    if (rc != CL_SUCCESS)
        return clattn__fail(err, rc, "clGetDeviceInfo failed: %s", clattn__cl_error_name(rc));
    char version[256] = "";
    if (clGetDeviceInfo(device, CL_DEVICE_VERSION, sizeof version - 1, version, NULL) == CL_SUCCESS)
        caps->pocl = strstr(version, "PoCL") != NULL || strstr(version, "pocl") != NULL;
    /* NVIDIA's OpenCL names no subgroup extension but takes inline PTX */
    caps->warp_shuffle = (caps->type & CL_DEVICE_TYPE_GPU) && strstr(caps->vendor, "NVIDIA") != NULL;
    /* cl_nv_device_attribute_query; a driver without it answers with an error, and the device
     * then gets neither TF32 products nor asynchronous copies */
    cl_uint cc_major = 0;
    caps->sm80 = caps->warp_shuffle &&
                 clGetDeviceInfo(device, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, sizeof cc_major, &cc_major, NULL) ==
                     CL_SUCCESS &&
                 cc_major >= 8;
    caps->intel_gpu = (caps->type & CL_DEVICE_TYPE_GPU) && strstr(caps->vendor, "Intel") != NULL;
    return CLATTN_STATUS_OK;
}

/* The default when no spec is given: $CLATTN_DEVICE, else a GPU, else a CPU, else reference. */
static const char *default_spec(void)
{
    const char *env = getenv("CLATTN_DEVICE");
    if (env != NULL && env[0] != '\0')
        return env;
    cl_device_id dev;
    if (clattn__find_device("gpu", &dev, NULL) == CLATTN_STATUS_OK)
        return "gpu";
    if (clattn__find_device("cpu", &dev, NULL) == CLATTN_STATUS_OK)
        return "cpu";
    return "reference";
}

static int context_alloc(const clattn_context_desc *desc, clattn_context **out, clattn__error *err)
{
    clattn_context *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "context of %zu bytes", sizeof *ctx);
    if (pthread_mutex_init(&ctx->programs_lock, NULL) != 0) {
        free(ctx);
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "context mutex");
    }
    if (pthread_mutex_init(&ctx->message_lock, NULL) != 0) {
        pthread_mutex_destroy(&ctx->programs_lock);
        free(ctx);
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "context mutex");
    }
    const char *dir = desc != NULL ? desc->cache_dir : NULL;
    if (dir == NULL)
        dir = getenv("CLATTN_CACHE_DIR");
    if (dir != NULL && dir[0] != '\0') {
        ctx->cache_dir = malloc(strlen(dir) + 1);
        if (ctx->cache_dir == NULL) {
            clattn_context_free(ctx);
            return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "cache_dir '%s'", dir);
        }
        strcpy(ctx->cache_dir, dir);
    }
    if (desc != NULL) {
        ctx->log = desc->log;
        ctx->log_user = desc->log_user;
    }
    *out = ctx;
    return CLATTN_STATUS_OK;
}

int clattn_context_create(const clattn_context_desc *desc, clattn_context **out)
{
    if (out == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    *out = NULL;
    clattn__error err = {{0}};
    clattn_context *ctx = NULL;
    int status = context_alloc(desc, &ctx, &err);
    if (status != CLATTN_STATUS_OK)
        return clattn__context_report(NULL, status, &err);
    const char *spec = desc != NULL && desc->device != NULL && desc->device[0] != '\0' ? desc->device : default_spec();
    if (strcmp(spec, "reference") == 0) {
        ctx->reference = 1;
        strcpy(ctx->caps.name, "reference (host, double precision)");
        *out = ctx;
        return CLATTN_STATUS_OK;
    }
    cl_int rc = CL_SUCCESS;
    status = clattn__find_device(spec, &ctx->device, &err);
    if (status == CLATTN_STATUS_OK)
        status = query_caps(ctx->device, &ctx->caps, &err);
    if (status == CLATTN_STATUS_OK) {
        ctx->cl = clCreateContext(NULL, 1, &ctx->device, NULL, NULL, &rc);
        if (rc == CL_SUCCESS)
            ctx->queue = clCreateCommandQueue(ctx->cl, ctx->device, CL_QUEUE_PROFILING_ENABLE, &rc);
        if (rc != CL_SUCCESS)
            status = clattn__fail(&err, rc, "device '%s': creating the context or queue failed: %s", spec,
                                  clattn__cl_error_name(rc));
    }
    if (status != CLATTN_STATUS_OK) {
        clattn_context_free(ctx);
        return clattn__context_report(NULL, status, &err);
    }
    *out = ctx;
    return CLATTN_STATUS_OK;
}

int clattn_context_wrap(cl_context cl_ctx, cl_device_id device, cl_command_queue queue, const clattn_context_desc *desc,
                        clattn_context **out)
{
    if (out == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    *out = NULL;
    if (cl_ctx == NULL || device == NULL || queue == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    clattn__error err = {{0}};
    clattn_context *ctx = NULL;
    int status = context_alloc(desc, &ctx, &err);
    if (status != CLATTN_STATUS_OK)
        return clattn__context_report(NULL, status, &err);
    status = query_caps(device, &ctx->caps, &err);
    if (status != CLATTN_STATUS_OK) {
        clattn_context_free(ctx);
        return clattn__context_report(NULL, status, &err);
    }
    clRetainContext(cl_ctx);
    clRetainCommandQueue(queue);
    ctx->cl = cl_ctx;
    ctx->device = device;
    ctx->queue = queue;
    *out = ctx;
    return CLATTN_STATUS_OK;
}

void clattn_context_free(clattn_context *ctx)
{
    if (ctx == NULL)
        return;
    clattn__program_cache_clear(ctx);
    if (ctx->queue != NULL)
        clReleaseCommandQueue(ctx->queue);
    if (ctx->cl != NULL)
        clReleaseContext(ctx->cl);
    pthread_mutex_destroy(&ctx->message_lock);
    pthread_mutex_destroy(&ctx->programs_lock);
    free(ctx->cache_dir);
    free(ctx);
}

/* Failures that happen before a context exists (creating one) leave their message here, per
 * thread; clattn_context_message(NULL) reads it. */
static _Thread_local char orphan_message[CLATTN_MESSAGE_SIZE];

int clattn__context_report(clattn_context *ctx, int status, const clattn__error *err)
{
    if (status == CLATTN_STATUS_OK)
        return status;
    const char *text = err != NULL ? err->text : "";
    if (ctx == NULL) {
        snprintf(orphan_message, sizeof orphan_message, "%s", text);
        return status;
    }
    pthread_mutex_lock(&ctx->message_lock);
    snprintf(ctx->message, sizeof ctx->message, "%s", text);
    pthread_mutex_unlock(&ctx->message_lock);
    return status;
}

void clattn__context_log(const clattn_context *ctx, const char *fmt, ...)
{
    if (ctx == NULL || ctx->log == NULL)
        return;
    char line[CLATTN_MESSAGE_SIZE];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    ctx->log(ctx->log_user, line);
}

void clattn_context_emulate_limits(clattn_context *ctx, size_t max_work_group, cl_ulong local_mem, cl_ulong max_alloc)
{
    if (max_work_group != 0)
        ctx->caps.max_work_group = max_work_group;
    if (local_mem != 0)
        ctx->caps.local_mem = local_mem;
    if (max_alloc != 0)
        ctx->caps.max_alloc = max_alloc;
}

const char *clattn_context_message(const clattn_context *ctx)
{
    if (ctx == NULL)
        return orphan_message;
    /* A copy per thread: another thread may rewrite ctx->message while the caller reads. */
    static _Thread_local char copy[CLATTN_MESSAGE_SIZE];
    clattn_context *shared = (clattn_context *)ctx; /* the lock is not part of the value */
    pthread_mutex_lock(&shared->message_lock);
    memcpy(copy, ctx->message, sizeof copy);
    pthread_mutex_unlock(&shared->message_lock);
    return copy;
}

int clattn_context_is_reference(const clattn_context *ctx)
{
    return ctx != NULL && ctx->reference;
}

const char *clattn_context_device_name(const clattn_context *ctx)
{
    return ctx != NULL ? ctx->caps.name : "";
}

cl_context clattn_context_cl_context(const clattn_context *ctx)
{
    return ctx != NULL ? ctx->cl : NULL;
}

cl_device_id clattn_context_cl_device(const clattn_context *ctx)
{
    return ctx != NULL ? ctx->device : NULL;
}

cl_command_queue clattn_context_queue(const clattn_context *ctx)
{
    return ctx != NULL ? ctx->queue : NULL;
}

const char *clattn_context_cache_dir(const clattn_context *ctx)
{
    return ctx != NULL ? ctx->cache_dir : NULL;
}

void clattn_context_force_tiles(clattn_context *ctx, const clattn_tiles *tiles)
{
    ctx->tiles_forced = tiles != NULL;
    if (tiles != NULL)
        ctx->forced_tiles = *tiles;
}

void clattn_context_force_split_tiles(clattn_context *ctx, const clattn_split_tiles *split)
{
    ctx->forced_split = split != NULL ? *split : (clattn_split_tiles){0};
}

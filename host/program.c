/* Builds OpenCL programs once per context: an in-memory list of (sources, options) -> program,
 * and an opt-in on-disk cache of binaries written to a temporary file and renamed into place,
 * so a second process does not pay the compiler again and a crash never leaves half a file. */
#include "program.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_file.h"

struct clattn__program_entry {
    char *key; /* program + '\n' + options */
    cl_program program;
    clattn__program_entry *next;
};

/* Kernel source text: embedded, or read from the source tree under the developer option. The
 * caller frees *owned (NULL when the text is embedded). */
static const char *kernel_source(const char *name, char **owned)
{
    *owned = NULL;
#ifdef CLATTN_KERNEL_DIR
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.cl", CLATTN_KERNEL_DIR, name);
    size_t size = 0;
    *owned = (char *)clattn__read_file(path, SIZE_MAX, &size, NULL);
    if (*owned != NULL)
        return *owned;
#endif
    return clattn__embedded_source(name);
}

/* Most source files one program concatenates. */
#define MAX_SOURCES 4

/* The texts of a program's source files, in order; owned[i] is NULL or what text[i] needs freed. */
typedef struct {
    const char *text[MAX_SOURCES];
    char *owned[MAX_SOURCES];
    cl_uint count;
} source_list;

static void free_sources(source_list *s)
{
    for (cl_uint i = 0; i < s->count; i++)
        free(s->owned[i]);
    s->count = 0;
}

/* The sources of `program`, file names joined by '+'. */
static int load_sources(const char *program, source_list *s, clattn__error *err)
{
    s->count = 0;
    for (const char *name = program; *name != '\0';) {
        const size_t len = strcspn(name, "+");
        char file[64];
        if (len == 0 || len >= sizeof file || s->count == MAX_SOURCES) {
            free_sources(s);
            return clattn__fail(err, CLATTN_STATUS_UNSUPPORTED, "program '%s' is not a list of sources", program);
        }
        memcpy(file, name, len);
        file[len] = '\0';
        s->text[s->count] = kernel_source(file, &s->owned[s->count]);
        if (s->text[s->count] == NULL) {
            free_sources(s);
            return clattn__fail(err, CLATTN_STATUS_UNSUPPORTED, "kernel source '%s' is not embedded", file);
        }
        s->count++;
        name += len + (name[len] == '+');
    }
    return CLATTN_STATUS_OK;
}

/* The hash covers every source text in order (the hash separates them), the options and the device. */
static void cache_path(const clattn_context *ctx, const source_list *sources, const char *options, char *path,
                       size_t size)
{
    uint64_t h = CLATTN_HASH_SEED;
    for (cl_uint i = 0; i < sources->count; i++)
        h = clattn__hash_text(h, sources->text[i]);
    h = clattn__hash_text(h, options);
    h = clattn__hash_device(h, &ctx->caps);
    snprintf(path, size, "%s/clattn-%016llx.bin", ctx->cache_dir, (unsigned long long)h);
}

static cl_program load_binary(clattn_context *ctx, const char *path, const char *options)
{
    size_t size = 0;
    unsigned char *data = clattn__read_file(path, SIZE_MAX, &size, NULL);
    if (data == NULL)
        return NULL;
    cl_int rc, bin_rc;
    const unsigned char *bins[1] = {data};
    cl_program prog = clCreateProgramWithBinary(ctx->cl, 1, &ctx->device, &size, bins, &bin_rc, &rc);
    free(data);
    if (rc == CL_SUCCESS && bin_rc == CL_SUCCESS &&
        clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL) == CL_SUCCESS)
        return prog;
    if (prog != NULL)
        clReleaseProgram(prog);
    clattn__context_log(ctx, "clattn: ignoring unusable cached binary %s", path);
    return NULL;
}

/* Best effort: a cache that cannot be written only costs the next process a compile. */
static void store_binary(clattn_context *ctx, cl_program prog, const char *path)
{
    size_t size = 0;
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS || size == 0)
        return;
    unsigned char *data = malloc(size);
    if (data == NULL)
        return;
    unsigned char *bins[1] = {data};
    if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) != CL_SUCCESS ||
        clattn__write_file(path, data, size) != 0)
        clattn__context_log(ctx, "clattn: could not write program cache %s", path);
    free(data);
}

/* OpenCL concatenates the strings: one program, as if the files were one. (Not const: the API
 * takes `const char **`.) */
static int build_from_source(clattn_context *ctx, const char *name, source_list *sources, const char *options,
                             cl_program *out, clattn__error *err)
{
    cl_int rc;
    cl_program prog = clCreateProgramWithSource(ctx->cl, sources->count, sources->text, NULL, &rc);
    if (rc != CL_SUCCESS)
        return clattn__fail(err, rc, "kernel '%s': clCreateProgramWithSource failed: %s", name,
                            clattn__cl_error_name(rc));
    rc = clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL);
    if (rc != CL_SUCCESS) {
        char log[CLATTN_MESSAGE_SIZE * 8] = "";
        clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
        clattn__context_log(ctx, "clattn: build log of kernel '%s' (%s):\n%s", name, options, log);
        clReleaseProgram(prog);
        return clattn__fail(err, rc, "kernel '%s' failed to build (%s) with options '%s': %.600s", name,
                            clattn__cl_error_name(rc), options, log);
    }
    *out = prog;
    return CLATTN_STATUS_OK;
}

static int build_program(clattn_context *ctx, const char *name, const char *options, cl_program *out,
                         clattn__error *err)
{
    source_list sources;
    int status = load_sources(name, &sources, err);
    if (status != CLATTN_STATUS_OK)
        return status;
    char path[4096] = "";
    if (ctx->cache_dir != NULL) {
        cache_path(ctx, &sources, options, path, sizeof path);
        *out = load_binary(ctx, path, options);
    }
    if (*out == NULL) {
        status = build_from_source(ctx, name, &sources, options, out, err);
        if (status == CLATTN_STATUS_OK && path[0] != '\0')
            store_binary(ctx, *out, path);
    }
    free_sources(&sources);
    return status;
}

/* Every kernel is OpenCL C 1.2. -w: some compilers (POCL's among them) write warnings straight to
 * the process's stderr, and the library never prints; a failed build's log still has them. No
 * fast-math flags ever: the masking relies on infinities. CPU devices also get CLATTN_CPU_DEVICE
 * (cl/common.cl). The GPU variant's programs (those with a *_gpu.cl source) on POCL's CPU device,
 * where they run to be checked (CLATTN_VARIANT=gpu, the tests) and never for speed, are built
 * without optimisation: POCL's optimiser spent about 9 s on each of them, most of the test suite's
 * time (test_async on POCL alone: about 230 s with its 26 programs optimised, 15 s without); the
 * largest then run slower (docs/PERFORMANCE.md, "Build times on the CPU runtimes"). Intel's CPU
 * runtime still builds them optimised. */
#define BASE_OPTIONS "-cl-std=CL1.2 -w "
#define CPU_OPTIONS "-DCLATTN_CPU_DEVICE=1 "
#define CHECKED_ONLY_OPTIONS CPU_OPTIONS "-cl-opt-disable "

static const char *device_options(const clattn_context *ctx, const char *name)
{
    if (!(ctx->caps.type & CL_DEVICE_TYPE_CPU))
        return "";
    return ctx->caps.pocl && strstr(name, "_gpu") != NULL ? CHECKED_ONLY_OPTIONS : CPU_OPTIONS;
}

int clattn__program_get(clattn_context *ctx, const char *name, const char *specific, cl_program *out,
                        clattn__error *err)
{
    const char *device = device_options(ctx, name);
    const size_t key_len = strlen(name) + strlen(BASE_OPTIONS) + strlen(device) + strlen(specific) + 2;
    char *key = malloc(key_len);
    if (key == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "program key of %zu bytes", key_len);
    snprintf(key, key_len, "%s\n%s%s%s", name, BASE_OPTIONS, device, specific);
    const char *options = key + strlen(name) + 1;

    /* Held while building: two threads asking for the same program build it once. */
    pthread_mutex_lock(&ctx->programs_lock);
    int status = CLATTN_STATUS_OK;
    *out = NULL;
    for (clattn__program_entry *e = ctx->programs; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0)
            *out = e->program;
    if (*out == NULL) {
        clattn__program_entry *entry = malloc(sizeof *entry);
        if (entry == NULL)
            status = clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "program cache entry");
        else if ((status = build_program(ctx, name, options, out, err)) != CLATTN_STATUS_OK)
            free(entry);
        else {
            entry->key = key;
            entry->program = *out;
            entry->next = ctx->programs;
            ctx->programs = entry;
            key = NULL;
        }
    }
    if (status == CLATTN_STATUS_OK)
        clRetainProgram(*out);
    pthread_mutex_unlock(&ctx->programs_lock);
    free(key);
    return status;
}

void clattn__program_cache_clear(clattn_context *ctx)
{
    clattn__program_entry *e = ctx->programs;
    while (e != NULL) {
        clattn__program_entry *next = e->next;
        clReleaseProgram(e->program);
        free(e->key);
        free(e);
        e = next;
    }
    ctx->programs = NULL;
}

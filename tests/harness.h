/* Shared test helpers: device discovery (with skip-with-a-reason), random tensors, and running
 * one problem on a device and on the double-precision reference to compare them. It reaches the
 * library through its public and advanced headers, and host/dtype.h's rounding (harness.c). */
#ifndef CLATTN_HARNESS_H
#define CLATTN_HARNESS_H

#include <stddef.h>

#include "check.h"
#include "clattn.h"
#include "clattn_advanced.h"

#define HARNESS_MAX_DEVICES 16
#define HARNESS_NO_DEVICE "no OpenCL device found (install an ICD such as pocl-opencl-icd)"

/* "P:D" specs of the first `max` OpenCL devices (clattn_device_list's order); 0 when there are
 * none or they cannot be listed (the caller skips). */
int harness_devices(char specs[][16], int max);

/* A context on the device `spec` (from harness_devices), its name printed as "device P:D: name".
 * NULL when the device's OpenCL runtime cannot be used at all, probed without clattn: it cannot
 * make a context or build a one-line kernel, as when an installed runtime does not work on this
 * CPU. That is the machine's fault, not clattn's: "SKIP device P:D: <why>" is printed and
 * harness_exit() reports the test skipped. When the runtime works, a failed clattn context (also
 * NULL), a clattn plan that does not build or a wrong result fails the test. */
clattn_context *harness_open(const char *spec);

/* check_exit(), but CHECK_SKIP, with the first unusable device's reason printed, when no check
 * failed and harness_open left a device out: such a test did not run everywhere, so it does not
 * pass. */
int harness_exit(void);

/* Calls body for every usable OpenCL device (harness_open) and every tile variant (forced on the
 * device's context), with a reference context beside it; tiles NULL: once per device, on the tile
 * table's choice (variant "table"). Returns the test's exit status: CHECK_SKIP, the reason printed,
 * when no device exists, else harness_exit()'s. */
typedef void (*harness_body)(clattn_context *dev, clattn_context *ref, const char *variant, size_t index);
int harness_each_variant(const clattn_tiles *tiles, const char *const *names, size_t count, harness_body body);

/* Host tensors for a normalized-or-not problem: random inputs, zeroed outputs, all float32 in t.
 * With a 16-bit storage type (p->dtype: SPEC.md, "Element types") the inputs in t are rounded to
 * it, so that t holds exactly what the device reads, and `stored` holds the same tensors in the
 * storage type (its lse is t's: LSE is float32 always). */
typedef struct {
    clattn_host_tensors t;
    clattn_host_tensors stored; /* dtype != F32 only */
    clattn_dtype dtype;
    float *out_ref, *lse_ref;
} harness_tensors;

int harness_tensors_alloc(const clattn_problem *p, int with_lse, unsigned long long seed, harness_tensors *h);
void harness_tensors_free(harness_tensors *h);

/* With a 16-bit storage type: rounds t's inputs to it in place and writes them into `stored`
 * (a test that changes t's inputs after harness_tensors_alloc calls it again). */
void harness_tensors_store(harness_tensors *h);

/* Runs p (p->dtype must be h's) on ctx: on h->t for float32; else on h->stored, inputs stored
 * from h->t first (harness_tensors_store) and the output widened into h->t.out. Returns a clattn
 * status (the failing context's message is printed to stderr). */
int harness_run(clattn_context *ctx, const clattn_problem *p, harness_tensors *h);

/* Runs p on dev and on ref with the same inputs; *max_err receives the largest absolute error of
 * O (and of the finite LSE values; a -inf LSE must match exactly, else the error is inf). With a
 * 16-bit p->dtype, the reference runs in float32 on the rounded inputs and O's error is what lies
 * beyond O's own rounding, half an ulp of the storage type at its magnitude (harness_max_error);
 * LSE is float32 and compared as such. Returns a clattn status (the failing context's message is
 * printed to stderr). */
int harness_compare(clattn_context *dev, clattn_context *ref, const clattn_problem *p, const int *seq_lens,
                    int with_lse, double *max_err);

/* The tiles a fresh plan of p on ctx runs with (clattn_plan_tiles), the plan freed again: a clattn
 * status, *out left as it was on failure. */
int harness_plan_tiles(clattn_context *ctx, const clattn_problem *p, clattn_tiles *out);

/* The GPU variant's problems for tests of its tile options (test_shuffle, test_mma): odd sizes,
 * GQA, padding (batch 2: harness_gpu_lens), causal, a dilated window with global, summary and extra
 * keys, global rows with their own projections, Dv != D and Nk != Nq, at D = 64 and 128. */
#define HARNESS_GPU_PROBLEMS 4
extern const clattn_problem harness_gpu_problems[HARNESS_GPU_PROBLEMS];
/* The same as pointers, for a list of problems (harness_option_test). */
#define HARNESS_GPU_PROBLEM_LIST                                                                                       \
    &harness_gpu_problems[0], &harness_gpu_problems[1], &harness_gpu_problems[2], &harness_gpu_problems[3]
_Static_assert(HARNESS_GPU_PROBLEMS == 4, "HARNESS_GPU_PROBLEM_LIST names each of harness_gpu_problems");
extern const int harness_gpu_lens[2];

/* Whether dev is an NVIDIA GPU, of any compute capability or of 8.0 or more, and whether it is an
 * Intel GPU, asked of OpenCL (harness_option_test.device_has). */
int harness_nvidia_any(clattn_context *dev);
int harness_nvidia_sm80(clattn_context *dev);
int harness_intel_gpu(clattn_context *dev);

/* A test of one of the GPU tiles' options whose value 1 is a vendor's (test_shuffle, test_mma and
 * test_async: inline PTX; test_large_grf: Intel's build option). */
typedef struct {
    size_t option;           /* the option: byte offset of its int in clattn_tiles */
    const char *option_name; /* and its name in the check lines */
    const char *name;        /* the capability its value 1 needs, e.g. "tensor cores" */
    size_t caps_flag;        /* that capability's flag: byte offset in clattn__device_caps */
    const char *note;        /* the plan's note to the log callback when the kernel with it does not build */
    /* Whether dev has the capability, asked of OpenCL; and (may_refuse 1) whether a device that has
     * it may still refuse the option, which then runs as 0, right */
    int (*device_has)(clattn_context *dev);
    int may_refuse;
    /* Whether a plan of problem p with tiles t runs the option at all (its value or 0 otherwise;
     * value 1 also needs the capability; NULL: every plan) */
    int (*usable)(const clattn_tiles *t, const clattn_problem *p);
    int (*tiles_ok)(const clattn_tiles *ran); /* what else a plan's tiles hold (NULL: nothing) */
    const clattn_tiles *variants;             /* the tiles tried, and their names */
    const char *const *names;
    size_t count;
    const clattn_problem *const *problems; /* the problems each variant runs */
    size_t nproblems;
    double tolerance; /* against the reference */
} harness_option_test;

/* Runs an option test on every device (harness_each_variant): each variant forced, on each problem,
 * or on the first alone where the option runs as 0 there (the other tests cover that kernel), must
 * match the reference within tolerance, run the option as usable and the capability say, and hold
 * tiles_ok; one check line per problem. Then, on a device without the capability, the first variant
 * with the option at 1 with the capability's flag claimed: the kernel does not build for its
 * compiler, and the plan must run the first problem right with the option at 0 and a log line with
 * the note (the flag and the log callback put back). Returns harness_each_variant's status. */
int harness_option_tests(const harness_option_test *test);

/* References held on ctx's OpenCL context: every buffer, queue and program (and, through its
 * program, every kernel) holds one, so an object leaked on any path shows up here. (POCL keeps a
 * queue alive while a buffer's last command came from it, so count only once plans are freed.) */
cl_uint harness_context_refs(const clattn_context *ctx);

/* The largest |a[i] - b[i]|; infinity when a NaN appears or infinities differ (equal infinities
 * agree). */
double harness_max_diff(const float *a, const float *b, size_t n);

/* The same for a[i], a value stored in `dtype` (widened), against b[i]: the largest part of
 * |a[i] - b[i]| beyond half an ulp of dtype at the larger magnitude of the two (nothing for
 * float32): what remains once a's own rounding is allowed for. */
double harness_max_error(const float *a, const float *b, size_t n, clattn_dtype dtype);

/* " f16" or " bf16" for a 16-bit storage type, "" for float32: a suffix for a check's line. */
const char *harness_storage(clattn_dtype dtype);

/* Half an ulp of the storage type at magnitude x >= 0 (0 for float32). */
double harness_half_ulp(clattn_dtype dtype, double x);

#endif

/* Several devices of one machine in one call (clattn_multi.h): the device list, the split of a
 * problem's key/value heads or batch entries in proportion to each device's weight, and the runs
 * (one host thread per device on host memory, or one enqueue per device on its own buffers). */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "clattn_multi.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clattn_advanced.h"
#include "error.h"
#include "problem.h"

#define MAX_MULTI_DEVICES 64

struct clattn_multi {
    int count;
    clattn_context *devices[MAX_MULTI_DEVICES];
    char message[CLATTN_MESSAGE_SIZE];
};

typedef struct {
    double weight;
    int first, count; /* units of the split dimension */
    clattn_plan *plan;
} device_share;

struct clattn_multi_plan {
    clattn_multi *multi;
    clattn_problem p; /* normalized; global_idx is the caller's */
    clattn_split_dim dim;
    int units; /* Hkv or B */
    device_share share[MAX_MULTI_DEVICES];
};

static _Thread_local char create_message[CLATTN_MESSAGE_SIZE];

static int report(clattn_multi *multi, int status, const clattn__error *err)
{
    char *dst = multi != NULL ? multi->message : create_message;
    if (status != CLATTN_STATUS_OK)
        memcpy(dst, err->text, CLATTN_MESSAGE_SIZE); /* err->text is always terminated */
    return status;
}

/* A failure of device i's context, its message prefixed with the device. */
static int device_failure(clattn__error *err, int status, int i, const char *what, const char *message)
{
    return clattn__fail(err, status, "device %d: %s: %s", i, what, message);
}

static int add_device(clattn_multi *m, const char *spec, const clattn_multi_desc *desc, clattn__error *err)
{
    if (m->count == MAX_MULTI_DEVICES)
        return clattn__fail(err, CLATTN_STATUS_INVALID_DEVICE_SPEC, "devices: more than %d", MAX_MULTI_DEVICES);
    const clattn_context_desc cd = {
        .device = spec, .cache_dir = desc->cache_dir, .log = desc->log, .log_user = desc->log_user};
    const int status = clattn_context_create(&cd, &m->devices[m->count]);
    if (status)
        return clattn__fail(err, status, "device '%s': %s", spec, clattn_context_message(NULL));
    if (clattn_context_is_reference(m->devices[m->count])) {
        clattn_context_free(m->devices[m->count]);
        return clattn__fail(err, CLATTN_STATUS_INVALID_DEVICE_SPEC, "device '%s': the reference path is no device",
                            spec);
    }
    m->count++;
    return CLATTN_STATUS_OK;
}

/* "*", "gpu:*", "cpu:*": every listed device of that type. */
static int add_wildcard(clattn_multi *m, const char *token, const clattn_multi_desc *desc, clattn__error *err)
{
    const cl_device_type type = strcmp(token, "gpu:*") == 0   ? CL_DEVICE_TYPE_GPU
                                : strcmp(token, "cpu:*") == 0 ? CL_DEVICE_TYPE_CPU
                                                              : CL_DEVICE_TYPE_ALL;
    clattn_device_info info[MAX_MULTI_DEVICES];
    int n = 0, added = 0;
    int status = clattn_device_list(info, MAX_MULTI_DEVICES, &n);
    if (status)
        return clattn__fail(err, status, "devices '%s': listing the OpenCL devices failed", token);
    for (int i = 0; i < n && i < MAX_MULTI_DEVICES && !status; i++)
        if (info[i].type & type) {
            status = add_device(m, info[i].spec, desc, err);
            added++;
        }
    if (!status && added == 0)
        status = clattn__fail(err, CLATTN_STATUS_NO_DEVICE, "devices '%s': no OpenCL device matches", token);
    return status;
}

static int add_devices(clattn_multi *m, const clattn_multi_desc *desc, clattn__error *err)
{
    const char *list = desc->devices != NULL && desc->devices[0] != '\0' ? desc->devices : "*";
    const char *at = list;
    int status = CLATTN_STATUS_OK;
    while (!status) {
        const size_t len = strcspn(at, ",");
        char token[64];
        if (len == 0 || len >= sizeof token)
            return clattn__fail(err, CLATTN_STATUS_INVALID_DEVICE_SPEC, "devices '%s': an empty or overlong entry",
                                list);
        memcpy(token, at, len);
        token[len] = '\0';
        status = strchr(token, '*') != NULL ? add_wildcard(m, token, desc, err) : add_device(m, token, desc, err);
        if (at[len] == '\0')
            break;
        at += len + 1;
    }
    return status;
}

int clattn_multi_create(const clattn_multi_desc *desc, clattn_multi **out)
{
    clattn__error err = {{0}};
    if (out == NULL)
        return report(NULL, clattn__fail(&err, CLATTN_STATUS_NULL_ARGUMENT, "out is NULL"), &err);
    *out = NULL;
    clattn_multi *m = calloc(1, sizeof *m);
    if (m == NULL)
        return report(NULL, clattn__fail(&err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "multi-device context"), &err);
    const clattn_multi_desc none = {0};
    const int status = add_devices(m, desc != NULL ? desc : &none, &err);
    if (status) {
        clattn_multi_free(m);
        return report(NULL, status, &err);
    }
    *out = m;
    return CLATTN_STATUS_OK;
}

void clattn_multi_free(clattn_multi *multi)
{
    if (multi == NULL)
        return;
    for (int i = multi->count - 1; i >= 0; i--)
        clattn_context_free(multi->devices[i]);
    free(multi);
}

const char *clattn_multi_message(const clattn_multi *multi)
{
    return multi != NULL ? multi->message : create_message;
}

int clattn_multi_device_count(const clattn_multi *multi)
{
    return multi != NULL ? multi->count : 0;
}

clattn_context *clattn_multi_device(const clattn_multi *multi, int i)
{
    return multi != NULL && i >= 0 && i < multi->count ? multi->devices[i] : NULL;
}

/* The problem of `count` units from `first` of the split dimension. */
static clattn_problem share_problem(const clattn_multi_plan *mp, int count)
{
    clattn_problem p = mp->p;
    if (mp->dim == CLATTN_SPLIT_KV_HEADS) {
        p.heads = p.heads / p.kv_heads * count;
        p.kv_heads = count;
    } else
        p.batch = count;
    return p;
}

/* Seconds of the second of two host runs of one unit of the problem on device i. */
static int measure_unit(clattn_multi_plan *mp, int i, double *seconds, clattn__error *err)
{
    const clattn_problem unit = share_problem(mp, 1);
    clattn__tensor_need needs[CLATTN__T_COUNT];
    clattn__tensor_needs(&unit, needs);
    clattn_host_tensors t;
    memset(&t, 0, sizeof t);
    clattn_plan *plan = NULL;
    int status = CLATTN_STATUS_OK;
    for (int k = 0; k < CLATTN__T_COUNT && !status; k++) {
        clattn_host_tensor *ht = (clattn_host_tensor *)clattn__host_tensor(&t, k);
        if (!needs[k].needed)
            continue;
        ht->data = calloc(needs[k].bytes, 1);
        ht->bytes = needs[k].bytes;
        if (ht->data == NULL)
            status = clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%s of %zu bytes for the weight probe",
                                  needs[k].name, needs[k].bytes);
    }
    clattn_context *ctx = mp->multi->devices[i];
    if (!status && (status = clattn_plan_create(ctx, &unit, &plan)) != 0)
        device_failure(err, status, i, "the weight probe's plan", clattn_context_message(ctx));
    struct timespec t0 = {0}, t1 = {0};
    for (int run = 0; run < 2 && !status; run++) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if ((status = clattn_plan_run_host(plan, &t)) != 0)
            device_failure(err, status, i, "the weight probe's run", clattn_context_message(ctx));
        clock_gettime(CLOCK_MONOTONIC, &t1);
    }
    *seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    clattn_plan_free(plan);
    for (int k = CLATTN__T_COUNT - 1; k >= 0; k--)
        free(clattn__host_tensor(&t, k)->data);
    return status;
}

static int set_weights(clattn_multi_plan *mp, const double *weights, clattn__error *err)
{
    for (int i = 0; i < mp->multi->count; i++) {
        if (weights != NULL) {
            if (!(weights[i] > 0.0)) /* NaN fails too */
                return clattn__fail(err, CLATTN_STATUS_INVALID_SIZE, "weights[%d] = %g: must be positive", i,
                                    weights[i]);
            mp->share[i].weight = weights[i];
            continue;
        }
        double seconds = 0.0;
        const int status = measure_unit(mp, i, &seconds, err);
        if (status)
            return status;
        mp->share[i].weight = 1.0 / (seconds > 1e-9 ? seconds : 1e-9);
    }
    return CLATTN_STATUS_OK;
}

/* Contiguous ranges: device i ends where the running share of the weights, rounded, ends. */
static void split_units(clattn_multi_plan *mp)
{
    double total = 0.0, before = 0.0;
    for (int i = 0; i < mp->multi->count; i++)
        total += mp->share[i].weight;
    int first = 0;
    for (int i = 0; i < mp->multi->count; i++) {
        before += mp->share[i].weight;
        int end = i == mp->multi->count - 1 ? mp->units : (int)(mp->units * (before / total) + 0.5);
        end = end < first ? first : end > mp->units ? mp->units : end;
        mp->share[i].first = first;
        mp->share[i].count = end - first;
        first = end;
    }
}

int clattn_multi_plan_create(clattn_multi *multi, const clattn_problem *problem, const double *weights,
                             clattn_multi_plan **out)
{
    clattn__error err = {{0}};
    if (multi == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    if (problem == NULL || out == NULL)
        return report(multi, clattn__fail(&err, CLATTN_STATUS_NULL_ARGUMENT, "problem or out is NULL"), &err);
    *out = NULL;
    clattn_multi_plan *mp = calloc(1, sizeof *mp);
    if (mp == NULL)
        return report(multi, clattn__fail(&err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "multi-device plan"), &err);
    mp->multi = multi;
    int status = clattn__problem_normalize(problem, &mp->p, &err);
    if (!status) {
        mp->dim = mp->p.kv_heads >= mp->p.batch ? CLATTN_SPLIT_KV_HEADS : CLATTN_SPLIT_BATCH;
        mp->units = mp->dim == CLATTN_SPLIT_KV_HEADS ? mp->p.kv_heads : mp->p.batch;
        status = set_weights(mp, weights, &err);
    }
    if (!status)
        split_units(mp);
    for (int i = 0; i < multi->count && !status; i++) {
        if (mp->share[i].count == 0)
            continue;
        const clattn_problem p = share_problem(mp, mp->share[i].count);
        if ((status = clattn_plan_create(multi->devices[i], &p, &mp->share[i].plan)) != 0)
            device_failure(&err, status, i, "plan", clattn_context_message(multi->devices[i]));
    }
    if (status) {
        clattn_multi_plan_free(mp);
        return report(multi, status, &err);
    }
    *out = mp;
    return CLATTN_STATUS_OK;
}

void clattn_multi_plan_free(clattn_multi_plan *plan)
{
    if (plan == NULL)
        return;
    for (int i = plan->multi->count - 1; i >= 0; i--)
        clattn_plan_free(plan->share[i].plan);
    free(plan);
}

int clattn_multi_plan_share(const clattn_multi_plan *plan, int i, clattn_split_dim *dim, int *first, int *count,
                            double *weight)
{
    if (plan == NULL || i < 0 || i >= plan->multi->count)
        return CLATTN_STATUS_NULL_ARGUMENT;
    if (dim != NULL)
        *dim = plan->dim;
    if (first != NULL)
        *first = plan->share[i].first;
    if (count != NULL)
        *count = plan->share[i].count;
    if (weight != NULL)
        *weight = plan->share[i].weight;
    return CLATTN_STATUS_OK;
}

clattn_plan *clattn_multi_plan_device_plan(const clattn_multi_plan *plan, int i)
{
    return plan != NULL && i >= 0 && i < plan->multi->count ? plan->share[i].plan : NULL;
}

/* ----------------------------------------------------------------------------------------- */
/* Host runs: a device's share of a whole tensor is `blocks` runs (one per batch entry when the
 * key/value heads are split, one in all when the batch is) of `count` units each. Every size and
 * offset is a fraction of the tensor's bytes from clattn__tensor_needs, which counts them in the
 * problem's storage type (LSE in float32), so a share is the same slice in every storage. */

typedef struct {
    const clattn_multi_plan *mp;
    int device;
    const clattn_host_tensors *whole;
    clattn_host_tensors mine;
    unsigned char *copies[CLATTN__T_COUNT]; /* gathered slices; NULL where `mine` points into `whole` */
    int status;
    clattn__error err;
} device_run;

static void copy_share(const clattn_multi_plan *mp, const device_share *s, size_t whole_bytes, unsigned char *share,
                       unsigned char *whole, int to_share)
{
    const size_t blocks = mp->dim == CLATTN_SPLIT_KV_HEADS ? (size_t)mp->p.batch : 1;
    const size_t unit = whole_bytes / blocks / (size_t)mp->units, run = unit * (size_t)s->count;
    for (size_t b = 0; b < blocks; b++) {
        unsigned char *w = whole + (b * (size_t)mp->units + (size_t)s->first) * unit;
        if (to_share)
            memcpy(share + b * run, w, run);
        else
            memcpy(w, share + b * run, run);
    }
}

/* Points or copies each given tensor's share into r->mine. */
static int prepare_share(device_run *r)
{
    const clattn_multi_plan *mp = r->mp;
    const device_share *s = &mp->share[r->device];
    clattn__tensor_need whole[CLATTN__T_COUNT], part[CLATTN__T_COUNT];
    clattn__tensor_needs(&mp->p, whole);
    const clattn_problem sp = share_problem(mp, s->count);
    clattn__tensor_needs(&sp, part);
    for (int k = 0; k < CLATTN__T_COUNT; k++) {
        const clattn_host_tensor *w = clattn__host_tensor(r->whole, k);
        clattn_host_tensor *m = (clattn_host_tensor *)clattn__host_tensor(&r->mine, k);
        if (w->data == NULL || (k != CLATTN__T_LSE && !whole[k].needed))
            continue;
        m->bytes = part[k].bytes;
        if (mp->dim == CLATTN_SPLIT_BATCH) { /* a contiguous range of the whole tensor */
            m->data = (unsigned char *)w->data + whole[k].bytes / (size_t)mp->units * (size_t)s->first;
            continue;
        }
        r->copies[k] = malloc(part[k].bytes);
        if (r->copies[k] == NULL)
            return clattn__fail(&r->err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "device %d: %s share of %zu bytes",
                                r->device, part[k].name, part[k].bytes);
        m->data = r->copies[k];
        if (k != CLATTN__T_OUT && k != CLATTN__T_LSE)
            copy_share(mp, s, whole[k].bytes, r->copies[k], w->data, 1);
    }
    r->mine.seq_lens = r->whole->seq_lens == NULL      ? NULL
                       : mp->dim == CLATTN_SPLIT_BATCH ? r->whole->seq_lens + s->first
                                                       : r->whole->seq_lens;
    return CLATTN_STATUS_OK;
}

static void *run_share(void *arg)
{
    device_run *r = arg;
    const device_share *s = &r->mp->share[r->device];
    r->status = prepare_share(r);
    if (!r->status && (r->status = clattn_plan_run_host(s->plan, &r->mine)) != 0)
        device_failure(&r->err, r->status, r->device, "run", clattn_context_message(r->mp->multi->devices[r->device]));
    if (!r->status) {
        clattn__tensor_need whole[CLATTN__T_COUNT];
        clattn__tensor_needs(&r->mp->p, whole);
        for (int k = CLATTN__T_OUT; k <= CLATTN__T_LSE; k++)
            if (r->copies[k] != NULL)
                copy_share(r->mp, s, whole[k].bytes, r->copies[k], clattn__host_tensor(r->whole, k)->data, 0);
    }
    for (int k = CLATTN__T_COUNT - 1; k >= 0; k--)
        free(r->copies[k]);
    return NULL;
}

int clattn_multi_plan_run_host(clattn_multi_plan *plan, const clattn_host_tensors *tensors)
{
    if (plan == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    clattn__error err = {{0}};
    if (tensors == NULL)
        return report(plan->multi, clattn__fail(&err, CLATTN_STATUS_NULL_ARGUMENT, "tensors is NULL"), &err);
    int status = clattn__check_host_tensors(&plan->p, tensors, &err);
    if (status)
        return report(plan->multi, status, &err);
    const int n = plan->multi->count;
    device_run *runs = calloc((size_t)n, sizeof *runs);
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    unsigned char *started = calloc((size_t)n, 1);
    if (runs == NULL || threads == NULL || started == NULL)
        status = clattn__fail(&err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%d device runs", n);
    /* Every share but the last non-empty one on a thread of its own; that one on this thread. */
    int last = -1;
    for (int i = 0; i < n && !status; i++)
        if (plan->share[i].count > 0)
            last = i;
    for (int i = 0; i < n && !status; i++) {
        runs[i] = (device_run){.mp = plan, .device = i, .whole = tensors};
        if (plan->share[i].count == 0 || i == last)
            continue;
        if (pthread_create(&threads[i], NULL, run_share, &runs[i]) == 0)
            started[i] = 1;
        else
            run_share(&runs[i]);
    }
    if (!status && last >= 0)
        run_share(&runs[last]);
    for (int i = 0; i < n && runs != NULL && started != NULL; i++)
        if (started[i])
            pthread_join(threads[i], NULL);
    for (int i = 0; i < n && !status && runs != NULL; i++)
        if (runs[i].status) {
            status = runs[i].status;
            err = runs[i].err;
        }
    free(started);
    free(threads);
    free(runs);
    return report(plan->multi, status, &err);
}

int clattn_multi_plan_enqueue(clattn_multi_plan *plan, const clattn_buffers *buffers, cl_event *events)
{
    if (plan == NULL)
        return CLATTN_STATUS_NULL_ARGUMENT;
    clattn__error err = {{0}};
    if (buffers == NULL)
        return report(plan->multi, clattn__fail(&err, CLATTN_STATUS_NULL_ARGUMENT, "buffers is NULL"), &err);
    int status = CLATTN_STATUS_OK;
    for (int i = 0; i < plan->multi->count; i++) {
        if (events != NULL)
            events[i] = NULL;
        if (plan->share[i].plan == NULL || status)
            continue;
        status = clattn_plan_enqueue(plan->share[i].plan, NULL, &buffers[i], 0, NULL, events ? &events[i] : NULL);
        if (status)
            device_failure(&err, status, i, "enqueue", clattn_context_message(plan->multi->devices[i]));
    }
    return report(plan->multi, status, &err);
}

/* Normalization and validation of a clattn_problem, and of the tensors a run passes for it:
 * every fault in SPEC.md's list gets its own status and a message that names the field and its
 * value. */
#include "problem.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"

static int check_positive(clattn__error *err, const char *name, int value)
{
    if (value <= 0)
        return clattn__fail(err, CLATTN_STATUS_INVALID_SIZE, "%s = %d: must be at least 1", name, value);
    return CLATTN_STATUS_OK;
}

static int check_globals(const clattn_problem *p, clattn__error *err)
{
    if (p->num_global < 0)
        return clattn__fail(err, CLATTN_STATUS_INVALID_SIZE, "num_global = %d: must be >= 0", p->num_global);
    if (p->num_global == 0)
        return p->global_qkv ? clattn__fail(err, CLATTN_STATUS_INVALID_PATTERN, "global_qkv = %d without global tokens",
                                            p->global_qkv)
                             : CLATTN_STATUS_OK;
    if (p->global_idx == NULL)
        return clattn__fail(err, CLATTN_STATUS_NULL_ARGUMENT, "global_idx is NULL with num_global = %d", p->num_global);
    unsigned char *seen = calloc((size_t)p->kv_len, 1);
    if (seen == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "global index set of %d keys", p->kv_len);
    int status = CLATTN_STATUS_OK;
    for (int g = 0; g < p->num_global && status == CLATTN_STATUS_OK; g++) {
        const int idx = p->global_idx[g];
        if (idx < 0 || idx >= p->kv_len)
            status = clattn__fail(err, CLATTN_STATUS_INVALID_GLOBAL_INDEX, "global_idx[%d] = %d: outside [0, %d)", g,
                                  idx, p->kv_len);
        else if (seen[idx])
            status = clattn__fail(err, CLATTN_STATUS_INVALID_GLOBAL_INDEX, "global_idx[%d] = %d: repeated", g, idx);
        else
            seen[idx] = 1;
    }
    free(seen);
    return status;
}

static int check_grid(const clattn_problem *p, clattn__error *err)
{
    if (p->grid_pattern == CLATTN_GRID_NONE)
        return CLATTN_STATUS_OK;
    if ((int)p->grid_pattern < 0 || p->grid_pattern > CLATTN_GRID_WINDOW)
        return clattn__fail(err, CLATTN_STATUS_INVALID_PATTERN, "grid_pattern = %d: unknown", (int)p->grid_pattern);
    if (p->grid_h <= 0 || p->grid_w <= 0 || (long long)p->grid_h * p->grid_w != p->q_len || p->q_len != p->kv_len)
        return clattn__fail(err, CLATTN_STATUS_INVALID_GRID,
                            "grid %d x %d: must be positive with product q_len = kv_len (q_len = %d, kv_len = %d)",
                            p->grid_h, p->grid_w, p->q_len, p->kv_len);
    if (p->window || p->num_global > 0 || p->summary_block > 0 || p->extra_len > 0)
        return clattn__fail(err, CLATTN_STATUS_INVALID_PATTERN,
                            "grid_pattern = %d cannot be combined with window, global, summary or extra keys",
                            (int)p->grid_pattern);
    if (p->grid_pattern == CLATTN_GRID_NEIGHBORHOOD) {
        if (p->grid_kernel_h < 1 || p->grid_kernel_w < 1)
            return clattn__fail(err, CLATTN_STATUS_INVALID_KERNEL_SIZE, "grid kernel %d x %d: sides must be >= 1",
                                p->grid_kernel_h, p->grid_kernel_w);
        if (p->grid_dilation < 1)
            return clattn__fail(err, CLATTN_STATUS_INVALID_DILATION, "grid_dilation = %d: must be >= 1",
                                p->grid_dilation);
    }
    if (p->grid_pattern == CLATTN_GRID_WINDOW) {
        if (p->grid_window_size < 1)
            return clattn__fail(err, CLATTN_STATUS_INVALID_KERNEL_SIZE, "grid_window_size = %d: must be >= 1",
                                p->grid_window_size);
        if (p->grid_shift < 0 || p->grid_shift >= p->grid_window_size)
            return clattn__fail(err, CLATTN_STATUS_INVALID_SHIFT, "grid_shift = %d: outside [0, %d)", p->grid_shift,
                                p->grid_window_size);
    }
    return CLATTN_STATUS_OK;
}

int clattn__problem_normalize(const clattn_problem *in, clattn_problem *out, clattn__error *err)
{
    if (in == NULL || out == NULL)
        return clattn__fail(err, CLATTN_STATUS_NULL_ARGUMENT, "problem is NULL");
    clattn_problem p = *in;
    if (p.kv_heads == 0)
        p.kv_heads = p.heads;
    if (p.kv_len == 0)
        p.kv_len = p.q_len;
    if (p.value_dim == 0)
        p.value_dim = p.head_dim;
    if (p.dilation == 0)
        p.dilation = 1;
    if (p.grid_dilation == 0)
        p.grid_dilation = 1;

    if (!clattn__dtype_valid((int)p.dtype))
        return clattn__fail(err, CLATTN_STATUS_INVALID_DTYPE, "dtype = %d: unknown (0 f32, 1 f16, 2 bf16)",
                            (int)p.dtype);
    int status;
    if ((status = check_positive(err, "batch", p.batch)) || (status = check_positive(err, "heads", p.heads)) ||
        (status = check_positive(err, "kv_heads", p.kv_heads)) || (status = check_positive(err, "q_len", p.q_len)) ||
        (status = check_positive(err, "kv_len", p.kv_len)) || (status = check_positive(err, "head_dim", p.head_dim)) ||
        (status = check_positive(err, "value_dim", p.value_dim)))
        return status;
    if (p.q_len > CLATTN_MAX_SEQ_LEN || p.kv_len > CLATTN_MAX_SEQ_LEN || p.extra_len > CLATTN_MAX_SEQ_LEN)
        return clattn__fail(err, CLATTN_STATUS_SIZE_OVERFLOW,
                            "q_len = %d, kv_len = %d, extra_len = %d: at most %d, so that positions and "
                            "distances fit in 32 bits",
                            p.q_len, p.kv_len, p.extra_len, CLATTN_MAX_SEQ_LEN);
    if (p.heads % p.kv_heads != 0)
        return clattn__fail(err, CLATTN_STATUS_INVALID_HEADS, "heads = %d is not a multiple of kv_heads = %d", p.heads,
                            p.kv_heads);
    if (p.head_dim > CLATTN_MAX_HEAD_DIM || p.value_dim > CLATTN_MAX_HEAD_DIM)
        return clattn__fail(err, CLATTN_STATUS_UNSUPPORTED_HEAD_DIM,
                            "head_dim = %d, value_dim = %d: at most %d is supported", p.head_dim, p.value_dim,
                            CLATTN_MAX_HEAD_DIM);
    if (!(p.scale == 0.0f || isfinite(p.scale)))
        return clattn__fail(err, CLATTN_STATUS_INVALID_SIZE, "scale = %g: must be finite", (double)p.scale);
    if (p.scale == 0.0f)
        p.scale = (float)(1.0 / sqrt((double)p.head_dim));
    if (p.window && (p.window_left < 0 || p.window_right < 0))
        return clattn__fail(err, CLATTN_STATUS_INVALID_WINDOW, "window = (%d, %d): sides must be >= 0", p.window_left,
                            p.window_right);
    if (p.dilation < 1)
        return clattn__fail(err, CLATTN_STATUS_INVALID_DILATION, "dilation = %d: must be >= 1", p.dilation);
    if (p.dilation > 1 && !p.window)
        return clattn__fail(err, CLATTN_STATUS_INVALID_PATTERN, "dilation = %d without a window", p.dilation);
    if (p.summary_block < 0)
        return clattn__fail(err, CLATTN_STATUS_INVALID_BLOCK, "summary_block = %d: must be >= 1", p.summary_block);
    if (p.summary_tail != CLATTN_SUMMARY_TAIL_MERGE && p.summary_tail != CLATTN_SUMMARY_TAIL_OWN)
        return clattn__fail(err, CLATTN_STATUS_INVALID_PATTERN, "summary_tail = %d: unknown (0 merge, 1 own)",
                            (int)p.summary_tail);
    if (p.summary_tail != CLATTN_SUMMARY_TAIL_MERGE && p.summary_block == 0)
        return clattn__fail(err, CLATTN_STATUS_INVALID_PATTERN, "summary_tail = %d without summary tokens",
                            (int)p.summary_tail);
    if (p.extra_len < 0)
        return clattn__fail(err, CLATTN_STATUS_INVALID_SIZE, "extra_len = %d: must be >= 0", p.extra_len);
    if ((status = check_globals(&p, err)) || (status = check_grid(&p, err)))
        return status;
    clattn__tensor_bytes bytes;
    if ((status = clattn__problem_bytes(&p, &bytes, err)))
        return status;
    *out = p;
    return CLATTN_STATUS_OK;
}

/* a * b * c * d elements of `size` bytes, or 0 on overflow of size_t or of a 32-bit element index. */
static size_t tensor_bytes(size_t size, long long a, long long b, long long c, long long d)
{
    const long long dims[4] = {a, b, c, d};
    uint64_t elements = 1;
    for (int i = 0; i < 4; i++) {
        if ((uint64_t)dims[i] > (uint64_t)INT_MAX / (elements ? elements : 1))
            return 0;
        elements *= (uint64_t)dims[i];
        if (elements > (uint64_t)INT_MAX)
            return 0;
    }
    if (elements > SIZE_MAX / size)
        return 0;
    return (size_t)elements * size;
}

int clattn__problem_bytes(const clattn_problem *p, clattn__tensor_bytes *bytes, clattn__error *err)
{
    memset(bytes, 0, sizeof *bytes);
    const size_t elem = clattn__dtype_size(p->dtype); /* the storage type's; LSE is float32 always */
    bytes->q = tensor_bytes(elem, p->batch, p->heads, p->q_len, p->head_dim);
    bytes->k = tensor_bytes(elem, p->batch, p->kv_heads, p->kv_len, p->head_dim);
    bytes->v = tensor_bytes(elem, p->batch, p->kv_heads, p->kv_len, p->value_dim);
    bytes->out = tensor_bytes(elem, p->batch, p->heads, p->q_len, p->value_dim);
    bytes->lse = tensor_bytes(sizeof(float), p->batch, p->heads, p->q_len, 1);
    if (!bytes->q || !bytes->k || !bytes->v || !bytes->out || !bytes->lse)
        return clattn__fail(err, CLATTN_STATUS_SIZE_OVERFLOW,
                            "B = %d, H = %d, Hkv = %d, Nq = %d, Nk = %d, D = %d, Dv = %d: a tensor has more than "
                            "2^31 - 1 elements",
                            p->batch, p->heads, p->kv_heads, p->q_len, p->kv_len, p->head_dim, p->value_dim);
    if (p->extra_len > 0) {
        bytes->kx = tensor_bytes(elem, p->batch, p->kv_heads, p->extra_len, p->head_dim);
        bytes->vx = tensor_bytes(elem, p->batch, p->kv_heads, p->extra_len, p->value_dim);
        if (!bytes->kx || !bytes->vx)
            return clattn__fail(err, CLATTN_STATUS_SIZE_OVERFLOW,
                                "extra_len = %d: the extra key tensors have more than 2^31 - 1 elements", p->extra_len);
    }
    return CLATTN_STATUS_OK;
}

int clattn__check_seq_lens(const clattn_problem *p, const int *seq_lens, clattn__error *err)
{
    if (seq_lens == NULL)
        return CLATTN_STATUS_OK;
    for (int b = 0; b < p->batch; b++)
        if (seq_lens[b] < 0 || seq_lens[b] > p->kv_len)
            return clattn__fail(err, CLATTN_STATUS_INVALID_SEQ_LEN, "seq_lens[%d] = %d: outside [0, %d]", b,
                                seq_lens[b], p->kv_len);
    return CLATTN_STATUS_OK;
}

void clattn__tensor_needs(const clattn_problem *p, clattn__tensor_need *needs)
{
    clattn__tensor_bytes b;
    clattn__problem_bytes(p, &b, NULL);
    const int gq = p->global_qkv != 0, ex = p->extra_len > 0;
    const clattn__tensor_need all[CLATTN__T_COUNT] = {
        {"q", 1, b.q},   {"k", 1, b.k},   {"v", 1, b.v},   {"out", 1, b.out}, {"lse", 0, b.lse},
        {"qg", gq, b.q}, {"kg", gq, b.k}, {"vg", gq, b.v}, {"kx", ex, b.kx},  {"vx", ex, b.vx},
    };
    memcpy(needs, all, sizeof all);
}

const clattn_host_tensor *clattn__host_tensor(const clattn_host_tensors *t, int i)
{
#define CLATTN__HOST_TENSOR_(field, NAME) &t->field,
    const clattn_host_tensor *const all[CLATTN__T_COUNT] = {CLATTN__TENSORS(CLATTN__HOST_TENSOR_)};
#undef CLATTN__HOST_TENSOR_
    return all[i];
}

static cl_mem device_buffer(const clattn_buffers *bufs, int i)
{
#define CLATTN__DEVICE_BUFFER_(field, NAME) bufs->field,
    const cl_mem all[CLATTN__T_COUNT] = {CLATTN__TENSORS(CLATTN__DEVICE_BUFFER_)};
#undef CLATTN__DEVICE_BUFFER_
    return all[i];
}

/* What a run gives as tensor i: whether it is there (*given) and its bytes, from a device buffer
 * (bufs) or a host tensor (host); exactly one of the two is not NULL. */
static int given_tensor(const clattn_buffers *bufs, const clattn_host_tensors *host, int i, int *given, size_t *bytes,
                        clattn__error *err)
{
    if (host != NULL) {
        *given = clattn__host_tensor(host, i)->data != NULL;
        *bytes = clattn__host_tensor(host, i)->bytes;
        return CLATTN_STATUS_OK;
    }
    const cl_mem mem = device_buffer(bufs, i);
    *given = mem != NULL;
    *bytes = 0;
    const cl_int rc = *given ? clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof *bytes, bytes, NULL) : CL_SUCCESS;
    if (rc != CL_SUCCESS)
        return clattn__fail(err, rc, "tensor %d is not a valid buffer: %s", i, clattn__cl_error_name(rc));
    return CLATTN_STATUS_OK;
}

/* The one check behind clattn__check_device_buffers and clattn__check_host_tensors. Every
 * tensor's size is read before any is judged, so an invalid buffer is reported first. */
static int check_run_tensors(const clattn_problem *p, const clattn_buffers *bufs, const clattn_host_tensors *host,
                             clattn__error *err)
{
    int given[CLATTN__T_COUNT];
    size_t bytes[CLATTN__T_COUNT];
    for (int i = 0; i < CLATTN__T_COUNT; i++) {
        const int status = given_tensor(bufs, host, i, &given[i], &bytes[i], err);
        if (status)
            return status;
    }
    clattn__tensor_need needs[CLATTN__T_COUNT];
    clattn__tensor_needs(p, needs);
    for (int i = 0; i < CLATTN__T_COUNT; i++) {
        if (needs[i].needed && !given[i])
            return clattn__fail(err, CLATTN_STATUS_NULL_ARGUMENT, "%s is NULL", needs[i].name);
        if (given[i] && bytes[i] < needs[i].bytes)
            return clattn__fail(err, CLATTN_STATUS_BUFFER_TOO_SMALL, "%s holds %zu bytes, the shape needs %zu",
                                needs[i].name, bytes[i], needs[i].bytes);
    }
    return clattn__check_seq_lens(p, host != NULL ? host->seq_lens : bufs->seq_lens, err);
}

int clattn__check_device_buffers(const clattn_problem *p, const clattn_buffers *bufs, clattn__error *err)
{
    return check_run_tensors(p, bufs, NULL, err);
}

int clattn__check_host_tensors(const clattn_problem *p, const clattn_host_tensors *t, clattn__error *err)
{
    return check_run_tensors(p, NULL, t, err);
}

/* .npy reading and writing: what a parsed header may hold (dtype, rank, sizes), the data, and
 * the files. One header parser (npy_header.c) serves the in-memory parser (and its fuzzer) and
 * the file reader, so both accept and reject exactly the same inputs with the same messages. */
#include "npy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clattn.h"
#include "npy_header.h"

_Static_assert(sizeof(float) == 4, "float must be IEEE binary32");

/* "(d, d, d, d)" with 20-character dimensions, or "(d,)" forms; also fits messages */
#define NPY_SHAPE_TEXT 128

/* ---------------------------------------------------------------------------------------------
 * Storage types: clattn_dtype's values in order, with their descr in a file.
 * ------------------------------------------------------------------------------------------- */

static const struct {
    const char *descr, *name;
    size_t size;
} dtypes[] = {{"<f4", "float32", 4}, {"<f2", "float16", 2}, {"<V2", "bfloat16", 2}};
#define NUM_DTYPES (int)(sizeof dtypes / sizeof dtypes[0])

static int known_dtype(clattn_dtype dtype)
{
    return (int)dtype >= 0 && (int)dtype < NUM_DTYPES;
}

size_t npy_dtype_size(clattn_dtype dtype)
{
    return known_dtype(dtype) ? dtypes[dtype].size : 0;
}

const char *npy_dtype_name(clattn_dtype dtype)
{
    return known_dtype(dtype) ? dtypes[dtype].name : "?";
}

/* ---------------------------------------------------------------------------------------------
 * Shapes and sizes, shared by the reader and the writer.
 * ------------------------------------------------------------------------------------------- */

/* Python's tuple repr: "(3,)", "(2, 3)"; also the header's shape value. */
static void format_shape(char text[NPY_SHAPE_TEXT], int rank, const long long *shape)
{
    size_t used = (size_t)snprintf(text, NPY_SHAPE_TEXT, "(");
    for (int i = 0; i < rank && used < NPY_SHAPE_TEXT; i++)
        used += (size_t)snprintf(text + used, NPY_SHAPE_TEXT - used, "%s%lld", i ? ", " : "", shape[i]);
    if (used < NPY_SHAPE_TEXT)
        snprintf(text + used, NPY_SHAPE_TEXT - used, rank == 1 ? ",)" : ")");
}

/* Elements of a shape with non-negative dimensions, failing when their bytes (`size` each)
 * overflow size_t. A zero dimension makes the count 0 whatever the other dimensions are, as in
 * NumPy. */
static int shape_count(int rank, const long long *shape, size_t size, size_t *count, tool_error *err)
{
    for (int i = 0; i < rank; i++) {
        if (shape[i] == 0) {
            *count = 0;
            return CLATTN_STATUS_OK;
        }
    }
    const size_t limit = SIZE_MAX / size;
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        if ((unsigned long long)shape[i] > limit / n) {
            char text[NPY_SHAPE_TEXT];
            format_shape(text, rank, shape);
            return tool_fail(err, CLATTN_STATUS_SIZE_OVERFLOW, "shape %s: its byte count overflows size_t", text);
        }
        n *= (size_t)shape[i];
    }
    *count = n;
    return CLATTN_STATUS_OK;
}

static int check_rank_range(int min_rank, int max_rank, tool_error *err)
{
    if (min_rank < 1 || max_rank > NPY_MAX_RANK || min_rank > max_rank)
        return tool_fail(err, CLATTN_STATUS_INVALID_SIZE, "rank range [%d, %d] is not within [1, %d]", min_rank,
                         max_rank, NPY_MAX_RANK);
    return CLATTN_STATUS_OK;
}

/* The storage type of a descr; FILE_DTYPE for one that is none of them. */
static int parse_dtype(const npy_header *h, clattn_dtype *dtype, tool_error *err)
{
    for (int i = 0; i < NUM_DTYPES; i++)
        if (h->descr_len == strlen(dtypes[i].descr) && memcmp(h->descr, dtypes[i].descr, h->descr_len) == 0) {
            *dtype = (clattn_dtype)i;
            return CLATTN_STATUS_OK;
        }
    /* np.load gives ml_dtypes.bfloat16's '<V2' back as bytes, which np.save writes as '|V2' */
    const int bytes = h->descr_len == 3 && memcmp(h->descr, "|V2", 3) == 0;
    return tool_fail(err, TOOL_STATUS_FILE_DTYPE,
                     "dtype '%.*s' is not supported: only little-endian float32 '<f4', float16 '<f2' and "
                     "bfloat16 '<V2' (as NumPy saves ml_dtypes.bfloat16) are%s",
                     (int)(h->descr_len > 40 ? 40 : h->descr_len), h->descr,
                     bytes ? "; for bfloat16, save the array viewed as ml_dtypes.bfloat16" : "");
}

/* Checks a parsed header against what the caller accepts; gives the storage type and the
 * element count. */
static int check_header(const npy_header *h, int min_rank, int max_rank, clattn_dtype *dtype, size_t *count,
                        tool_error *err)
{
    const int status = parse_dtype(h, dtype, err);
    if (status != CLATTN_STATUS_OK)
        return status;
    if (h->fortran_order)
        return tool_fail(err, TOOL_STATUS_FILE_DTYPE, "fortran_order is True: only C-order arrays are supported");
    if (h->rank < min_rank || h->rank > max_rank)
        return tool_fail(err, TOOL_STATUS_FILE_RANK, "rank %d is outside [%d, %d]", h->rank, min_rank, max_rank);
    if (h->big_dim != NULL)
        return tool_fail(err, CLATTN_STATUS_SIZE_OVERFLOW, "dimension %.*s overflows a 64-bit integer",
                         (int)(h->big_dim_len > 40 ? 40 : h->big_dim_len), h->big_dim);
    return shape_count(h->rank, h->shape, dtypes[*dtype].size, count, err);
}

static int check_data_length(const npy_header *h, size_t bytes_per_element, size_t count, size_t actual,
                             tool_error *err)
{
    const size_t expected = count * bytes_per_element;
    if (actual == expected)
        return CLATTN_STATUS_OK;
    char text[NPY_SHAPE_TEXT];
    format_shape(text, h->rank, h->shape);
    if (actual < expected)
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED, "truncated data: shape %s needs %zu bytes, %zu present", text,
                         expected, actual);
    return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED, "malformed: %zu bytes of data, shape %s needs %zu (%zu trailing)",
                     actual, text, expected, actual - expected);
}

static int alloc_tensor(const npy_header *h, clattn_dtype dtype, size_t count, npy_tensor *out, tool_error *err)
{
    out->rank = h->rank;
    memcpy(out->shape, h->shape, sizeof out->shape);
    out->dtype = dtype;
    out->count = count;
    if (count == 0)
        return CLATTN_STATUS_OK;
    const size_t bytes = count * dtypes[dtype].size;
    out->data = malloc(bytes);
    if (out->data == NULL)
        return tool_fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%zu bytes for a tensor", bytes);
    return CLATTN_STATUS_OK;
}

/* Little-endian elements of `size` bytes (4 or 2) to host order; src may be dst itself (each
 * element is read whole before it is written), which lets the reader convert in place. */
static void decode_elements(void *dst, const unsigned char *src, size_t count, size_t size)
{
    unsigned char *out = dst;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *b = src + size * i;
        uint32_t bits = 0;
        for (size_t k = size; k-- > 0;)
            bits = bits << 8 | b[k];
        if (size == 4) {
            memcpy(out + 4 * i, &bits, 4);
        } else {
            const uint16_t half = (uint16_t)bits;
            memcpy(out + 2 * i, &half, 2);
        }
    }
}

static void encode_elements(unsigned char *dst, const void *src, size_t count, size_t size)
{
    const unsigned char *in = src;
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        if (size == 4) {
            memcpy(&bits, in + 4 * i, 4);
        } else {
            uint16_t half;
            memcpy(&half, in + 2 * i, 2);
            bits = half;
        }
        for (size_t k = 0; k < size; k++)
            dst[size * i + k] = (unsigned char)(bits >> 8 * k);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Public calls.
 * ------------------------------------------------------------------------------------------- */

void npy_free(npy_tensor *t)
{
    if (t == NULL)
        return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

int npy_parse(const unsigned char *bytes, size_t size, int min_rank, int max_rank, npy_tensor *out, tool_error *err)
{
    if (out == NULL || (bytes == NULL && size > 0))
        return tool_fail(err, CLATTN_STATUS_NULL_ARGUMENT, "npy parse: %s is NULL", out ? "bytes" : "out");
    memset(out, 0, sizeof *out);
    npy_header h;
    clattn_dtype dtype = CLATTN_DTYPE_F32;
    size_t count = 0;
    int status = check_rank_range(min_rank, max_rank, err);
    if (status == CLATTN_STATUS_OK)
        status = npy_header_parse(bytes, size, &h, err);
    if (status == CLATTN_STATUS_OK)
        status = check_header(&h, min_rank, max_rank, &dtype, &count, err);
    if (status == CLATTN_STATUS_OK)
        status = check_data_length(&h, dtypes[dtype].size, count, size - h.data_offset, err);
    if (status == CLATTN_STATUS_OK)
        status = alloc_tensor(&h, dtype, count, out, err);
    if (status == CLATTN_STATUS_OK)
        decode_elements(out->data, bytes + h.data_offset, count, dtypes[dtype].size);
    else
        npy_free(out);
    return status;
}

static int read_error(tool_error *err)
{
    return tool_fail(err, TOOL_STATUS_FILE_IO, "read error: %s", strerror(errno));
}

/* Bytes left in the stream, consumed; only trailing garbage gets here, so it is rare and small. */
static size_t count_rest(FILE *f)
{
    unsigned char sink[4096];
    size_t total = 0;
    size_t got;
    while ((got = fread(sink, 1, sizeof sink, f)) > 0)
        total += got;
    return total;
}

/* The bytes from the current position to the end, when the stream can seek (a regular file),
 * so that a short file is reported as such before a tensor of the size its header claims is
 * allocated. Returns 0 when that cannot be known; the position is kept. */
static int data_bytes_in_file(FILE *f, size_t *bytes)
{
    const long here = ftell(f);
    if (here < 0 || fseek(f, 0, SEEK_END) != 0)
        return 0;
    const long end = ftell(f);
    if (fseek(f, here, SEEK_SET) != 0 || end < here)
        return 0;
    *bytes = (unsigned long)(end - here) > SIZE_MAX ? SIZE_MAX : (size_t)(end - here);
    return 1;
}

/* Reads exactly the preamble (its length depends on the version byte), then the header it
 * announces, then the data straight into the tensor, so that a large file is never held twice. */
static int read_stream(FILE *f, int min_rank, int max_rank, npy_tensor *out, tool_error *err)
{
    unsigned char preamble[NPY_PREAMBLE_MAX];
    size_t got = fread(preamble, 1, NPY_PREFIX_BYTES, f);
    if (got == NPY_PREFIX_BYTES && npy_preamble_size(preamble[6]) > got)
        got += fread(preamble + got, 1, npy_preamble_size(preamble[6]) - got, f);
    if (ferror(f))
        return read_error(err);
    size_t preamble_len = 0;
    size_t header_len = 0;
    int status = npy_preamble_parse(preamble, got, &preamble_len, &header_len, err);
    if (status != CLATTN_STATUS_OK)
        return status;

    unsigned char *header = malloc(preamble_len + header_len);
    if (header == NULL)
        return tool_fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%zu bytes for the npy header", header_len);
    memcpy(header, preamble, preamble_len);
    const size_t header_got = preamble_len + fread(header + preamble_len, 1, header_len, f);
    npy_header h;
    clattn_dtype dtype = CLATTN_DTYPE_F32;
    size_t count = 0;
    status = ferror(f) ? read_error(err) : npy_header_parse(header, header_got, &h, err);
    if (status == CLATTN_STATUS_OK)
        status = check_header(&h, min_rank, max_rank, &dtype, &count, err);
    const size_t size = dtypes[dtype].size;
    size_t in_file = 0;
    if (status == CLATTN_STATUS_OK && data_bytes_in_file(f, &in_file))
        status = check_data_length(&h, size, count, in_file, err);
    if (status == CLATTN_STATUS_OK)
        status = alloc_tensor(&h, dtype, count, out, err);
    if (status == CLATTN_STATUS_OK) {
        /* checked again while reading, for streams that cannot seek and files that change;
         * in bytes, so that a partial last element is counted too */
        const size_t data_got = count ? fread(out->data, 1, count * size, f) : 0;
        const size_t rest = count_rest(f);
        status = ferror(f) ? read_error(err) : check_data_length(&h, size, count, data_got + rest, err);
    }
    if (status == CLATTN_STATUS_OK)
        decode_elements(out->data, out->data, count, size);
    free(header);
    return status;
}

int npy_read(const char *path, int min_rank, int max_rank, npy_tensor *out, tool_error *err)
{
    if (out == NULL || path == NULL)
        return tool_fail(err, CLATTN_STATUS_NULL_ARGUMENT, "npy read: %s is NULL", out ? "path" : "out");
    memset(out, 0, sizeof *out);
    tool_error inner; /* the message without the path, which is prefixed at the end */
    int status = check_rank_range(min_rank, max_rank, &inner);
    FILE *f = NULL;
    if (status == CLATTN_STATUS_OK && (f = fopen(path, "rb")) == NULL)
        status = tool_fail(&inner, TOOL_STATUS_FILE_IO, "cannot open: %s", strerror(errno));
    if (status == CLATTN_STATUS_OK) {
        status = read_stream(f, min_rank, max_rank, out, &inner);
        fclose(f); /* read-only: a close error loses nothing */
    }
    if (status == CLATTN_STATUS_OK)
        return status;
    npy_free(out);
    return tool_fail(err, status, "%s: %s", path, inner.text);
}

int npy_same_dtype(const npy_tensor *t, const char *const *names, int count, tool_error *err)
{
    int first = -1;
    for (int i = 0; i < count; i++) {
        if (names[i] == NULL)
            continue;
        if (first < 0)
            first = i;
        else if (t[i].dtype != t[first].dtype)
            return tool_fail(err, TOOL_STATUS_FILE_DTYPE,
                             "%s is %s ('%s') and %s is %s ('%s'): every tensor of a call has one storage type",
                             names[i], npy_dtype_name(t[i].dtype), dtypes[t[i].dtype].descr, names[first],
                             npy_dtype_name(t[first].dtype), dtypes[t[first].dtype].descr);
    }
    return CLATTN_STATUS_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Writer.
 * ------------------------------------------------------------------------------------------- */

/* The 1.0 preamble and dict, padded with spaces and ended by '\n' so that the data starts at a
 * multiple of 64 bytes (NumPy's own alignment, which lets readers map the data aligned). */
static size_t format_header(unsigned char *dst, size_t capacity, clattn_dtype dtype, int rank, const long long *shape)
{
    char text[NPY_SHAPE_TEXT];
    format_shape(text, rank, shape);
    char *dict = (char *)dst + 10;
    const int dict_len = snprintf(dict, capacity - 10, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                                  dtypes[dtype].descr, text);
    const size_t total = ((size_t)10 + (size_t)dict_len + 1 + 63) / 64 * 64;
    memset(dict + dict_len, ' ', total - 10 - (size_t)dict_len - 1);
    dst[total - 1] = '\n';
    memcpy(dst, npy_magic, sizeof npy_magic);
    dst[6] = 1;
    dst[7] = 0;
    dst[8] = (unsigned char)((total - 10) & 0xff);
    dst[9] = (unsigned char)((total - 10) >> 8);
    return total;
}

static int check_write_args(const char *path, clattn_dtype dtype, int rank, const long long *shape, const void *data,
                            size_t *count, tool_error *err)
{
    if (path == NULL || shape == NULL)
        return tool_fail(err, CLATTN_STATUS_NULL_ARGUMENT, "npy write: %s is NULL", path ? "shape" : "path");
    if (!known_dtype(dtype))
        return tool_fail(err, TOOL_STATUS_FILE_DTYPE, "%s: dtype %d is not a clattn_dtype", path, (int)dtype);
    if (rank < 1 || rank > NPY_MAX_RANK)
        return tool_fail(err, TOOL_STATUS_FILE_RANK, "%s: rank %d is outside [1, %d]", path, rank, NPY_MAX_RANK);
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return tool_fail(err, CLATTN_STATUS_INVALID_SIZE, "%s: shape[%d] = %lld is negative", path, i, shape[i]);
    }
    const int status = shape_count(rank, shape, dtypes[dtype].size, count, err);
    if (status == CLATTN_STATUS_OK && data == NULL && *count > 0)
        return tool_fail(err, CLATTN_STATUS_NULL_ARGUMENT, "%s: data is NULL for %zu elements", path, *count);
    return status;
}

/* Creates a temporary file beside `path` that no one else is using: C11's exclusive "x" mode
 * fails on a name that exists, such as another writer's or a crashed run's. */
static FILE *open_temp(const char *path, char *temp, size_t temp_size)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(temp, temp_size, "%s.tmp%d", path, attempt);
        FILE *f = fopen(temp, "wbx");
        if (f != NULL || errno != EEXIST)
            return f;
    }
    return NULL;
}

static int write_stream(FILE *f, clattn_dtype dtype, int rank, const long long *shape, const void *data, size_t count)
{
    unsigned char buffer[16384]; /* header, then chunks of little-endian data */
    const size_t header_len = format_header(buffer, sizeof buffer, dtype, rank, shape);
    if (fwrite(buffer, 1, header_len, f) != header_len)
        return 0;
    const size_t size = dtypes[dtype].size, chunk = sizeof buffer / size;
    for (size_t done = 0; done < count; done += chunk) {
        const size_t n = count - done < chunk ? count - done : chunk;
        encode_elements(buffer, (const unsigned char *)data + done * size, n, size);
        if (fwrite(buffer, size, n, f) != n)
            return 0;
    }
    return 1;
}

/* rename() replaces the destination atomically on POSIX; Windows refuses an existing
 * destination (EEXIST), where removing it first is the best that C alone offers. */
static int replace_file(const char *from, const char *to)
{
    if (rename(from, to) == 0)
        return 0;
    if (errno != EEXIST || remove(to) != 0)
        return -1;
    return rename(from, to);
}

int npy_write(const char *path, clattn_dtype dtype, int rank, const long long *shape, const void *data, tool_error *err)
{
    size_t count = 0;
    int status = check_write_args(path, dtype, rank, shape, data, &count, err);
    if (status != CLATTN_STATUS_OK)
        return status;
    const size_t temp_size = strlen(path) + 16;
    char *temp = malloc(temp_size);
    if (temp == NULL)
        return tool_fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%s: temporary file name", path);
    FILE *f = open_temp(path, temp, temp_size);
    if (f == NULL) {
        status = tool_fail(err, TOOL_STATUS_FILE_IO, "%s: cannot create a temporary file: %s", path, strerror(errno));
    } else {
        const int written = write_stream(f, dtype, rank, shape, data, count);
        const int saved = errno;
        const int closed = fclose(f) == 0;
        if (!written || !closed)
            status =
                tool_fail(err, TOOL_STATUS_FILE_IO, "%s: cannot write: %s", path, strerror(written ? errno : saved));
        else if (replace_file(temp, path) != 0)
            status = tool_fail(err, TOOL_STATUS_FILE_IO, "%s: cannot replace with %s: %s", path, temp, strerror(errno));
        if (status != CLATTN_STATUS_OK)
            remove(temp);
    }
    free(temp);
    return status;
}

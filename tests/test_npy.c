/* Tests of the .npy reader and writer: round trips in every storage type, hand-made files in
 * every header variant NumPy writes (float32 '<f4', float16 '<f2', and bfloat16 '<V2' as NumPy
 * saves ml_dtypes.bfloat16), broken files, each of which must fail with its exact status, through
 * both the in-memory parser and the file reader, and the one-storage-type-per-call check. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, mkdir, opendir: the test's scratch directory */

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "clattn.h"
#include "npy.h"

static char scratch[64]; /* the mkdtemp directory every file of this run lives in */

static void scratch_path(char *path, size_t size, const char *name)
{
    snprintf(path, size, "%s/%s", scratch, name);
}

static int write_bytes(const char *path, const unsigned char *bytes, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    const int ok = fwrite(bytes, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

/* The whole file, malloc'd (at least one byte so that an empty file is not NULL). */
static unsigned char *read_bytes(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1024, n = 0, got;
    unsigned char *bytes = malloc(cap);
    while (bytes != NULL && (got = fread(bytes + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            bytes = realloc(bytes, cap *= 2);
    }
    fclose(f);
    *size = n;
    return bytes;
}

static int count_scratch_entries(void)
{
    DIR *dir = opendir(scratch);
    if (dir == NULL)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dir);
    return n;
}

/* The bits of the number i + 1 (exact in every type for i < 256) in a storage type. */
static uint32_t element_bits(clattn_dtype dtype, size_t i)
{
    const float value = (float)(i + 1);
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    if (dtype == CLATTN_DTYPE_BF16)
        return bits >> 16; /* bfloat16 is the upper half of a float32 */
    if (dtype == CLATTN_DTYPE_F16) {
        int exponent = 0;
        const double m = frexp(value, &exponent); /* value = m * 2^exponent, m in [0.5, 1) */
        return (uint32_t)(exponent - 1 + 15) << 10 | (uint32_t)((2.0 * m - 1.0) * 1024.0);
    }
    return bits;
}

/* A .npy image: magic, version major.0, the header length (2 bytes for 1.0, 4 otherwise), the
 * header text verbatim, then `data_bytes` bytes of the numbers 1, 2, 3, ... in `dtype`
 * (little-endian). */
static size_t make_npy(unsigned char *image, int major, const char *header, clattn_dtype dtype, size_t data_bytes)
{
    const size_t header_len = strlen(header);
    memcpy(image, "\x93NUMPY", 6);
    image[6] = (unsigned char)major;
    image[7] = 0;
    size_t n = 8;
    for (int i = 0; i < (major == 1 ? 2 : 4); i++)
        image[n++] = (unsigned char)(header_len >> 8 * i);
    memcpy(image + n, header, header_len);
    n += header_len;
    const size_t size = npy_dtype_size(dtype);
    for (size_t i = 0; i < data_bytes; i++)
        image[n++] = (unsigned char)(element_bits(dtype, i / size) >> 8 * (i % size));
    return n;
}

/* Runs an image through the parser and, written to a file, through the reader: both must give
 * `expect`, a message containing `needle` (and the path, for the reader), and on failure a
 * zeroed result. Returns the parsed tensor (caller frees) for the success cases. */
static npy_tensor run_image(const char *name, const unsigned char *image, size_t size, int min_rank, int max_rank,
                            int expect, const char *needle)
{
    npy_tensor parsed, read;
    tool_error err = {{0}};
    const int status = npy_parse(image, size, min_rank, max_rank, &parsed, &err);
    CHECK(status == expect, "%s: parse gave %d (%s), expected %d", name, status, err.text, expect);
    CHECK(status != CLATTN_STATUS_OK || needle == NULL || strstr(err.text, needle) != NULL,
          "%s: parse message '%s' lacks '%s'", name, err.text, needle ? needle : "");

    char path[128];
    scratch_path(path, sizeof path, "case.npy");
    CHECK(write_bytes(path, image, size), "%s: cannot write %s", name, path);
    tool_error read_err = {{0}};
    const int read_status = npy_read(path, min_rank, max_rank, &read, &read_err);
    CHECK(read_status == expect, "%s: read gave %d (%s), expected %d", name, read_status, read_err.text, expect);
    if (read_status != CLATTN_STATUS_OK) {
        CHECK(strstr(read_err.text, path) != NULL, "%s: read message '%s' lacks the path", name, read_err.text);
        CHECK(needle == NULL || strstr(read_err.text, needle) != NULL, "%s: read message '%s' lacks '%s'", name,
              read_err.text, needle ? needle : "");
        CHECK(read.data == NULL && read.rank == 0 && read.count == 0, "%s: failed read left data", name);
    }
    if (status != CLATTN_STATUS_OK)
        CHECK(parsed.data == NULL && parsed.rank == 0 && parsed.count == 0, "%s: failed parse left data", name);
    if (status == CLATTN_STATUS_OK && read_status == CLATTN_STATUS_OK) {
        CHECK(
            parsed.rank == read.rank && parsed.count == read.count && parsed.dtype == read.dtype &&
                memcmp(parsed.shape, read.shape, sizeof parsed.shape) == 0 &&
                (parsed.count == 0 || memcmp(parsed.data, read.data, parsed.count * npy_dtype_size(parsed.dtype)) == 0),
            "%s: parse and read disagree", name);
    }
    npy_free(&read);
    remove(path);
    return parsed;
}

/* The element i of a tensor as bits, whatever its storage type. */
static uint32_t tensor_bits(const npy_tensor *t, size_t i)
{
    if (npy_dtype_size(t->dtype) == 2) {
        uint16_t half;
        memcpy(&half, (const unsigned char *)t->data + 2 * i, 2);
        return half;
    }
    uint32_t bits;
    memcpy(&bits, (const unsigned char *)t->data + 4 * i, 4);
    return bits;
}

static void check_valid_as(const char *name, int major, const char *header, clattn_dtype dtype, int rank,
                           const long long *shape)
{
    unsigned char image[1024];
    size_t count = 1;
    for (int i = 0; i < rank; i++)
        count *= (size_t)shape[i];
    const size_t size = make_npy(image, major, header, dtype, count * npy_dtype_size(dtype));
    npy_tensor t = run_image(name, image, size, 1, 4, CLATTN_STATUS_OK, NULL);
    CHECK(t.dtype == dtype, "%s: dtype %s, expected %s", name, npy_dtype_name(t.dtype), npy_dtype_name(dtype));
    CHECK(t.rank == rank, "%s: rank %d, expected %d", name, t.rank, rank);
    for (int i = 0; i < rank && i < t.rank; i++)
        CHECK(t.shape[i] == shape[i], "%s: shape[%d] = %lld, expected %lld", name, i, t.shape[i], shape[i]);
    CHECK(t.count == count, "%s: count %zu, expected %zu", name, t.count, count);
    CHECK((count == 0) == (t.data == NULL), "%s: data %p for count %zu", name, (void *)t.data, count);
    for (size_t i = 0; i < t.count && i < count && t.dtype == dtype; i++)
        CHECK(tensor_bits(&t, i) == element_bits(dtype, i), "%s: data[%zu] has bits 0x%x, expected 0x%x", name, i,
              (unsigned)tensor_bits(&t, i), (unsigned)element_bits(dtype, i));
    npy_free(&t);
}

static void check_valid(const char *name, int major, const char *header, int rank, const long long *shape)
{
    check_valid_as(name, major, header, CLATTN_DTYPE_F32, rank, shape);
}

static void check_broken(const char *name, int major, const char *header, size_t data_bytes, int min_rank, int max_rank,
                         int expect, const char *needle)
{
    unsigned char image[1024];
    const size_t size = make_npy(image, major, header, CLATTN_DTYPE_F32, data_bytes);
    npy_tensor t = run_image(name, image, size, min_rank, max_rank, expect, needle);
    npy_free(&t);
}

#define SPACES_30 "                              "
#define F4_3 "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }          \n"

static void test_hand_made(void)
{
    check_valid("v1.0", 1, F4_3, 1, (const long long[]){3});
    check_valid("v2.0 reordered, odd spacing", 2, "{ 'shape' : ( 2 ,3 ) ,\t'fortran_order' :False,'descr':'<f4'}\n", 2,
                (const long long[]){2, 3});
    check_valid("v3.0 double quotes", 3, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1, 2, 1, 2)}", 4,
                (const long long[]){1, 2, 1, 2});
    check_valid("trailing comma in shape", 1, "{'fortran_order': False, 'shape': (2, 2, 3,), 'descr': '<f4', }", 3,
                (const long long[]){2, 2, 3});
    check_valid("zero dimension", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }\n", 2,
                (const long long[]){0, 4});
    check_valid_as("float16 '<f2'", 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }\n",
                   CLATTN_DTYPE_F16, 2, (const long long[]){2, 3});
    check_valid_as("float16 v3.0, rank 4", 3, "{\"descr\": \"<f2\", \"fortran_order\": False, \"shape\": (1, 2, 3, 5)}",
                   CLATTN_DTYPE_F16, 4, (const long long[]){1, 2, 3, 5});
    /* byte for byte the header NumPy 2 writes for np.save(path, np.zeros(3, ml_dtypes.bfloat16)) */
    check_valid_as("bfloat16 '<V2' (ml_dtypes)", 1,
                   "{'descr': '<V2', 'fortran_order': False, 'shape': (3,), }" SPACES_30 SPACES_30 "\n",
                   CLATTN_DTYPE_BF16, 1, (const long long[]){3});
    check_valid_as("bfloat16 zero dimension", 1, "{'descr': '<V2', 'fortran_order': False, 'shape': (4, 0), }",
                   CLATTN_DTYPE_BF16, 2, (const long long[]){4, 0});
}

static void test_broken_headers(void)
{
    const int trunc = TOOL_STATUS_FILE_TRUNCATED, dtype = TOOL_STATUS_FILE_DTYPE;
    const int rank = TOOL_STATUS_FILE_RANK, overflow = CLATTN_STATUS_SIZE_OVERFLOW;
    check_broken("rank 0", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, 1, 4, rank, "rank 0");
    check_broken("rank 5", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }", 4, 1, 4, rank,
                 "rank 5");
    check_broken("rank 1 below min_rank 2", 1, F4_3, 12, 2, 4, rank, "rank 1");
    check_broken("<f8", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 24, 1, 4, dtype, "'<f8'");
    check_broken(">f4", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", 12, 1, 4, dtype, "'>f4'");
    check_broken("<i4", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", 12, 1, 4, dtype, "'<i4'");
    check_broken(">f2", 1, "{'descr': '>f2', 'fortran_order': False, 'shape': (3,), }", 6, 1, 4, dtype, "'>f2'");
    check_broken("|V2 (a loaded bfloat16 saved again)", 1, "{'descr': '|V2', 'fortran_order': False, 'shape': (3,), }",
                 6, 1, 4, dtype, "'<V2'");
    check_broken("<V4", 1, "{'descr': '<V4', 'fortran_order': False, 'shape': (3,), }", 12, 1, 4, dtype, "'<V4'");
    check_broken("<f2 data one byte short", 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", 5, 1, 4,
                 trunc, "needs 6 bytes, 5 present");
    check_broken("<V2 one trailing byte", 1, "{'descr': '<V2', 'fortran_order': False, 'shape': (2, 2), }", 9, 1, 4,
                 trunc, "1 trailing");
    check_broken("structured", 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", 12, 1, 4, dtype,
                 "structured");
    check_broken("fortran_order True", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", 12, 1, 4, dtype,
                 "fortran_order");
    check_broken("negative dimension", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 0, 1, 4,
                 trunc, "-3");
    check_broken("product overflow", 1,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }", 0, 1, 4, overflow,
                 "4294967296");
    check_broken("dimension beyond 64 bits", 1,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0, 1, 4, overflow,
                 "99999999999999999999");
    check_broken("missing shape", 1, "{'descr': '<f4', 'fortran_order': False, }", 0, 1, 4, trunc, "'shape'");
    check_broken("missing descr", 1, "{'fortran_order': False, 'shape': (3,)}", 12, 1, 4, trunc, "'descr'");
    check_broken("unterminated dict", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), ", 12, 1, 4, trunc,
                 "unterminated");
    check_broken("unterminated string", 1, "{'descr': '<f4', 'fortran_order': False, 'shape", 0, 1, 4, trunc, NULL);
    check_broken("unterminated tuple", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, ", 0, 1, 4, trunc,
                 NULL);
    check_broken("unknown key", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}", 12, 1, 4,
                 trunc, "'extra'");
    check_broken("repeated key", 1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}", 12, 1, 4,
                 trunc, "repeated");
    check_broken("shape not a tuple", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3)}", 12, 1, 4, trunc,
                 "(3,)");
    check_broken("lower-case false", 1, "{'descr': '<f4', 'fortran_order': false, 'shape': (3,)}", 12, 1, 4, trunc,
                 "True or False");
    check_broken("text after the dict", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)} x\n", 12, 1, 4,
                 trunc, "'x'");
    check_broken("no dict", 1, "   \n", 12, 1, 4, trunc, "'{'");
    check_broken("data one byte short", 1, F4_3, 11, 1, 4, trunc, "needs 12 bytes, 11 present");
    check_broken("one trailing byte", 1, F4_3, 13, 1, 4, trunc, "malformed");
    check_broken("invalid rank range", 1, F4_3, 12, 0, 5, CLATTN_STATUS_INVALID_SIZE, "[0, 5]");
}

static void test_broken_preambles(void)
{
    unsigned char image[1024];
    const size_t size = make_npy(image, 1, F4_3, CLATTN_DTYPE_F32, 12);
    npy_tensor t;

    t = run_image("empty file", image, 0, 1, 4, TOOL_STATUS_FILE_TRUNCATED, "empty");
    t = run_image("magic only", image, 6, 1, 4, TOOL_STATUS_FILE_TRUNCATED, "6 bytes");
    t = run_image("preamble cut in the length", image, 9, 1, 4, TOOL_STATUS_FILE_TRUNCATED, "9 bytes");
    t = run_image("truncated header", image, 30, 1, 4, TOOL_STATUS_FILE_TRUNCATED, "truncated header");

    image[5] = 'Z';
    t = run_image("bad magic", image, size, 1, 4, TOOL_STATUS_FILE_TRUNCATED, "5a");
    image[5] = 'Y';
    image[6] = 4;
    t = run_image("version 4.0", image, size, 1, 4, TOOL_STATUS_FILE_TRUNCATED, "4.0");
    image[6] = 1;
    image[7] = 1;
    t = run_image("version 1.1", image, size, 1, 4, TOOL_STATUS_FILE_TRUNCATED, "1.1");

    const size_t v2 = make_npy(image, 2, F4_3, CLATTN_DTYPE_F32, 12);
    image[11] = 0x7f; /* header length near 2 GiB */
    t = run_image("huge header length", image, v2, 1, 4, TOOL_STATUS_FILE_TRUNCATED, "header length");
    npy_free(&t);

    char path[128];
    scratch_path(path, sizeof path, "does-not-exist.npy");
    tool_error err = {{0}};
    const int status = npy_read(path, 1, 4, &t, &err);
    CHECK(status == TOOL_STATUS_FILE_IO, "nonexistent path: status %d (%s)", status, err.text);
    CHECK(strstr(err.text, path) != NULL, "nonexistent path: message '%s' lacks the path", err.text);
}

static int contains(const unsigned char *bytes, size_t size, const char *text)
{
    const size_t len = strlen(text);
    for (size_t i = 0; i + len <= size; i++)
        if (memcmp(bytes + i, text, len) == 0)
            return 1;
    return 0;
}

/* Exact bits survive, including -0, infinities, NaN and subnormals: float32 values, or every
 * 16-bit pattern in turn (float16 and bfloat16 infinities, NaNs and subnormals among them). */
static void fill(clattn_dtype dtype, void *data, size_t count)
{
    const float special[] = {-0.0f, INFINITY, -INFINITY, NAN, 1e-45f, -3.4028235e38f};
    for (size_t i = 0; i < count; i++) {
        if (npy_dtype_size(dtype) == 2) {
            const uint16_t bits = (uint16_t)(i * 40503u + 0x7c00u);
            memcpy((unsigned char *)data + 2 * i, &bits, 2);
        } else {
            const float value = i < 6 ? special[i] : (float)i * 0.37f - 5.0f;
            memcpy((unsigned char *)data + 4 * i, &value, 4);
        }
    }
}

static void check_round_trip(clattn_dtype dtype, int rank, const long long *shape)
{
    char path[128];
    scratch_path(path, sizeof path, "round.npy");
    size_t count = 1;
    for (int i = 0; i < rank; i++)
        count *= (size_t)shape[i];
    const size_t element = npy_dtype_size(dtype);
    const char *name = npy_dtype_name(dtype);
    void *data = malloc(count ? count * element : 1);
    fill(dtype, data, count);

    tool_error err = {{0}};
    int status = npy_write(path, dtype, rank, shape, data, &err);
    CHECK(status == CLATTN_STATUS_OK, "%s: write rank %d: %d (%s)", name, rank, status, err.text);
    npy_tensor t;
    status = npy_read(path, rank, rank, &t, &err);
    CHECK(status == CLATTN_STATUS_OK, "%s: read back rank %d: %d (%s)", name, rank, status, err.text);
    CHECK(t.rank == rank && memcmp(t.shape, shape, (size_t)rank * sizeof *shape) == 0 && t.count == count &&
              t.dtype == dtype,
          "%s: rank %d: shape, count or dtype changed", name, rank);
    CHECK(count == 0 || (t.data != NULL && memcmp(t.data, data, count * element) == 0), "%s: rank %d: data changed",
          name, rank);
    npy_free(&t);

    size_t size = 0;
    unsigned char *bytes = read_bytes(path, &size);
    CHECK(bytes != NULL && size >= 10, "%s: rank %d: cannot read the written file", name, rank);
    if (bytes != NULL && size >= 10) {
        const size_t data_offset = 10 + (size_t)(bytes[8] | bytes[9] << 8);
        const char *descr[] = {"'descr': '<f4'", "'descr': '<f2'", "'descr': '<V2'"};
        CHECK(bytes[6] == 1 && bytes[7] == 0, "%s: rank %d: version %d.%d", name, rank, bytes[6], bytes[7]);
        CHECK(data_offset % 64 == 0 && data_offset <= size && bytes[data_offset - 1] == '\n',
              "%s: rank %d: header ends at %zu, not a multiple of 64 ending in a newline", name, rank, data_offset);
        CHECK(size == data_offset + count * element, "%s: rank %d: %zu bytes for %zu elements", name, rank, size,
              count);
        CHECK(data_offset <= size && contains(bytes + 10, data_offset - 10, descr[dtype]),
              "%s: rank %d: the header lacks %s", name, rank, descr[dtype]);
    }
    free(bytes);
    free(data);
    remove(path);
}

static void test_round_trips(void)
{
    for (int dtype = CLATTN_DTYPE_F32; dtype <= CLATTN_DTYPE_BF16; dtype++) {
        check_round_trip((clattn_dtype)dtype, 1, (const long long[]){7});
        check_round_trip((clattn_dtype)dtype, 2, (const long long[]){3, 5});
        check_round_trip((clattn_dtype)dtype, 3, (const long long[]){2, 3, 7});
        check_round_trip((clattn_dtype)dtype, 4, (const long long[]){2, 1, 3, 5});
        check_round_trip((clattn_dtype)dtype, 4, (const long long[]){3, 17, 1, 129});
        check_round_trip((clattn_dtype)dtype, 1, (const long long[]){70000}); /* every 16-bit pattern, in chunks */
        check_round_trip((clattn_dtype)dtype, 3, (const long long[]){2, 0, 3});
    }
}

/* One storage type per call: the first named tensor's; unnamed (absent) tensors do not count. */
static void test_same_dtype(void)
{
    npy_tensor t[4] = {{.dtype = CLATTN_DTYPE_F16},
                       {.dtype = CLATTN_DTYPE_F32},
                       {.dtype = CLATTN_DTYPE_F16},
                       {.dtype = CLATTN_DTYPE_BF16}};
    tool_error err = {{0}};
    const char *const skip_f32[] = {"q.npy", NULL, "k.npy"};
    int status = npy_same_dtype(t, skip_f32, 3, &err);
    CHECK(status == CLATTN_STATUS_OK, "float16 q and k, an absent float32 tensor: %d (%s)", status, err.text);
    const char *const none[] = {NULL, NULL};
    CHECK(npy_same_dtype(t, none, 2, &err) == CLATTN_STATUS_OK, "no tensor named: not OK");
    const char *const all[] = {"q.npy", "k.npy", "v.npy", "kx.npy"};
    status = npy_same_dtype(t, all, 4, &err);
    CHECK(status == TOOL_STATUS_FILE_DTYPE, "float16 q, float32 k: status %d, expected FILE_DTYPE", status);
    CHECK(strstr(err.text, "k.npy is float32 ('<f4')") != NULL && strstr(err.text, "q.npy is float16 ('<f2')") != NULL,
          "the message '%s' names the files and their types", err.text);
    const char *const bf16[] = {"q.npy", NULL, "v.npy", "kx.npy"};
    status = npy_same_dtype(t, bf16, 4, &err);
    CHECK(status == TOOL_STATUS_FILE_DTYPE && strstr(err.text, "kx.npy is bfloat16 ('<V2')") != NULL,
          "bfloat16 kx after float16 q and v: %d (%s)", status, err.text);
}

static void test_writer_errors(void)
{
    char path[128], dir_path[128];
    const float data[6] = {1, 2, 3, 4, 5, 6};
    const long long shape[5] = {2, 3, 1, 1, 1};
    tool_error err = {{0}};
    const int before = count_scratch_entries();
    const clattn_dtype f32 = CLATTN_DTYPE_F32;

    scratch_path(path, sizeof path, "no-such-dir/out.npy");
    int status = npy_write(path, f32, 2, shape, data, &err);
    CHECK(status == TOOL_STATUS_FILE_IO, "write into a missing directory: %d (%s)", status, err.text);
    CHECK(strstr(err.text, path) != NULL, "write message '%s' lacks the path", err.text);

    /* The destination is a directory: the temporary file is written, the rename fails, and the
     * temporary file must be gone afterwards. */
    scratch_path(dir_path, sizeof dir_path, "a-directory");
    CHECK(mkdir(dir_path, 0700) == 0, "cannot create %s", dir_path);
    status = npy_write(dir_path, f32, 2, shape, data, &err);
    CHECK(status == TOOL_STATUS_FILE_IO, "write over a directory: %d (%s)", status, err.text);
    CHECK(count_scratch_entries() == before + 1, "a failed write left %d entries (expected %d)",
          count_scratch_entries(), before + 1);
    remove(dir_path);

    scratch_path(path, sizeof path, "out.npy");
    status = npy_write(path, f32, 5, shape, data, &err);
    CHECK(status == TOOL_STATUS_FILE_RANK, "write rank 5: %d", status);
    status = npy_write(path, f32, 0, shape, data, &err);
    CHECK(status == TOOL_STATUS_FILE_RANK, "write rank 0: %d", status);
    status = npy_write(path, f32, 2, (const long long[]){2, -3}, data, &err);
    CHECK(status == CLATTN_STATUS_INVALID_SIZE, "write negative dimension: %d", status);
    status = npy_write(path, f32, 2, (const long long[]){1LL << 40, 1LL << 40}, data, &err);
    CHECK(status == CLATTN_STATUS_SIZE_OVERFLOW, "write overflowing shape: %d", status);
    status = npy_write(path, f32, 2, shape, NULL, &err);
    CHECK(status == CLATTN_STATUS_NULL_ARGUMENT, "write NULL data: %d", status);
    status = npy_write(path, (clattn_dtype)3, 2, shape, data, &err);
    CHECK(status == TOOL_STATUS_FILE_DTYPE && strstr(err.text, "dtype 3") != NULL, "write dtype 3: %d (%s)", status,
          err.text);
    CHECK(count_scratch_entries() == before, "rejected writes created files");

    /* Overwriting replaces the file whole. */
    status = npy_write(path, f32, 2, shape, data, &err);
    CHECK(status == CLATTN_STATUS_OK, "first write: %d (%s)", status, err.text);
    status = npy_write(path, f32, 1, (const long long[]){2}, data + 4, &err);
    CHECK(status == CLATTN_STATUS_OK, "overwrite: %d (%s)", status, err.text);
    npy_tensor t;
    status = npy_read(path, 1, 4, &t, &err);
    const float *values = t.data;
    CHECK(status == CLATTN_STATUS_OK && t.rank == 1 && t.count == 2 && values[0] == 5 && values[1] == 6,
          "overwritten file reads back wrong: %d (%s)", status, err.text);
    CHECK(count_scratch_entries() == before + 1, "writes left temporary files");
    npy_free(&t);
    npy_free(&t); /* twice is harmless */
    npy_free(NULL);
    remove(path);
}

int main(void)
{
    strcpy(scratch, "/tmp/clattn_npy_XXXXXX");
    if (mkdtemp(scratch) == NULL) {
        check(0, "cannot create a scratch directory under /tmp");
        return check_exit();
    }
    test_hand_made();
    test_broken_headers();
    test_broken_preambles();
    test_round_trips();
    test_same_dtype();
    test_writer_errors();
    const int left = count_scratch_entries();
    CHECK(left == 0, "%d files left in %s", left, scratch);
    if (remove(scratch) != 0)
        printf("note: could not remove %s\n", scratch);
    return check_exit();
}

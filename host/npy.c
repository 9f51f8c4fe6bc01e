/* .npy reading and writing. One header parser serves the in-memory parser (and its fuzzer) and
 * the file reader, so both accept and reject exactly the same inputs with the same messages. */
#include "npy.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clattn.h"

_Static_assert(sizeof(float) == 4, "float must be IEEE binary32");

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* magic, major, minor, then a 2-byte (1.0) or 4-byte (2.0, 3.0) little-endian header length */
#define NPY_PREFIX_BYTES 8
#define NPY_PREAMBLE_MAX 12
/* A float32 header is under 200 bytes; the cap keeps a hostile length field from making the
 * reader allocate gigabytes before it finds that the file is short. */
#define NPY_HEADER_LIMIT 65536
/* "(d, d, d, d)" with 20-character dimensions, or "(d,)" forms; also fits messages */
#define NPY_SHAPE_TEXT 128

typedef struct {
    size_t data_offset; /* preamble + header: where the array bytes start */
    const char *descr;  /* points into the header */
    size_t descr_len;
    int has_descr, has_fortran, has_shape;
    int fortran_order;
    int rank; /* number of entries in the shape tuple, even beyond CLATTN_NPY_MAX_RANK */
    long long shape[CLATTN_NPY_MAX_RANK];
    const char *big_dim; /* first dimension too large for long long, NULL when none */
    size_t big_dim_len;
} npy_header;

typedef struct {
    const char *begin, *pos, *end;
} cursor;

/* ---------------------------------------------------------------------------------------------
 * Shapes and sizes, shared by the reader and the writer.
 * ------------------------------------------------------------------------------------------- */

/* Python's tuple repr: "(3,)", "(2, 3)"; also the header's shape value. */
static void format_shape(char text[NPY_SHAPE_TEXT], int rank, const long long *shape)
{
    size_t used = (size_t)snprintf(text, NPY_SHAPE_TEXT, "(");
    for (int i = 0; i < rank && used < NPY_SHAPE_TEXT; i++)
        used += (size_t)snprintf(text + used, NPY_SHAPE_TEXT - used, "%s%lld", i ? ", " : "",
                                 shape[i]);
    if (used < NPY_SHAPE_TEXT)
        snprintf(text + used, NPY_SHAPE_TEXT - used, rank == 1 ? ",)" : ")");
}

/* Elements of a shape with non-negative dimensions, failing when their bytes overflow size_t.
 * A zero dimension makes the count 0 whatever the other dimensions are, as in NumPy. */
static int shape_count(int rank, const long long *shape, size_t *count, clattn__error *err)
{
    for (int i = 0; i < rank; i++) {
        if (shape[i] == 0) {
            *count = 0;
            return CLATTN_STATUS_OK;
        }
    }
    const size_t limit = SIZE_MAX / sizeof(float);
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        if ((unsigned long long)shape[i] > limit / n) {
            char text[NPY_SHAPE_TEXT];
            format_shape(text, rank, shape);
            return clattn__fail(err, CLATTN_STATUS_SIZE_OVERFLOW,
                               "shape %s: its byte count overflows size_t", text);
        }
        n *= (size_t)shape[i];
    }
    *count = n;
    return CLATTN_STATUS_OK;
}

static int check_rank_range(int min_rank, int max_rank, clattn__error *err)
{
    if (min_rank < 1 || max_rank > CLATTN_NPY_MAX_RANK || min_rank > max_rank)
        return clattn__fail(err, CLATTN_STATUS_INVALID_SIZE, "rank range [%d, %d] is not within [1, %d]",
                           min_rank, max_rank, CLATTN_NPY_MAX_RANK);
    return CLATTN_STATUS_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Header dict: a Python literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * in any key order, with any whitespace, and nothing but whitespace after the closing brace.
 * ------------------------------------------------------------------------------------------- */

/* The next character after any whitespace (which it consumes), or -1 at the end. */
static int next_char(cursor *c)
{
    while (c->pos < c->end && (*c->pos == ' ' || *c->pos == '\t' || *c->pos == '\n' || *c->pos == '\r'))
        c->pos++;
    return c->pos < c->end ? (unsigned char)*c->pos : -1;
}

static int accept(cursor *c, char ch)
{
    if (next_char(c) != (unsigned char)ch)
        return 0;
    c->pos++;
    return 1;
}

static int malformed(const cursor *c, clattn__error *err, const char *expected)
{
    if (c->pos >= c->end)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED,
                           "npy header malformed: it ends inside the dict (unterminated) where %s was "
                           "expected",
                           expected);
    const unsigned char found = (unsigned char)*c->pos;
    const size_t at = (size_t)(c->pos - c->begin);
    if (found >= 0x20 && found < 0x7f)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED,
                           "npy header malformed at header byte %zu: found '%c' where %s was expected",
                           at, found, expected);
    return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED,
                       "npy header malformed at header byte %zu: found byte 0x%02x where %s was expected",
                       at, found, expected);
}

/* A quoted string without escapes (dtype strings and keys have none). */
static int parse_string(cursor *c, const char **text, size_t *len)
{
    const int quote = next_char(c);
    if (quote != '\'' && quote != '"')
        return 0;
    const char *start = c->pos + 1;
    const char *stop = start;
    while (stop < c->end && *stop != quote)
        stop++;
    if (stop == c->end) {
        c->pos = c->end; /* reported as a header that ends inside the dict */
        return 0;
    }
    *text = start;
    *len = (size_t)(stop - start);
    c->pos = stop + 1;
    return 1;
}

static int is_token(const char *text, size_t len, const char *word)
{
    return len == strlen(word) && memcmp(text, word, len) == 0;
}

static int parse_bool(cursor *c, int *value, clattn__error *err)
{
    next_char(c); /* skips the whitespace before the word */
    const char *start = c->pos;
    while (c->pos < c->end && ((*c->pos >= 'A' && *c->pos <= 'Z') || (*c->pos >= 'a' && *c->pos <= 'z')))
        c->pos++;
    const size_t len = (size_t)(c->pos - start);
    if (is_token(start, len, "True") || is_token(start, len, "False")) {
        *value = *start == 'T';
        return CLATTN_STATUS_OK;
    }
    c->pos = start;
    return malformed(c, err, "True or False");
}

/* A non-negative decimal integer. One too large for long long is noted in h->big_dim and
 * reported after the dtype and rank checks, which say more about a wrong file. */
static int parse_dim(cursor *c, npy_header *h, long long *value, clattn__error *err)
{
    if (next_char(c) == '-') {
        const char *start = c->pos++;
        while (c->pos < c->end && *c->pos >= '0' && *c->pos <= '9')
            c->pos++;
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED, "npy header malformed: negative dimension %.*s",
                           (int)(c->pos - start > 24 ? 24 : c->pos - start), start);
    }
    const char *start = c->pos;
    long long v = 0;
    int too_big = 0;
    for (; c->pos < c->end && *c->pos >= '0' && *c->pos <= '9'; c->pos++) {
        const int digit = *c->pos - '0';
        if (v > (LLONG_MAX - digit) / 10)
            too_big = 1;
        else
            v = v * 10 + digit;
    }
    if (c->pos == start)
        return malformed(c, err, "a dimension (a non-negative integer)");
    if (too_big && h->big_dim == NULL) {
        h->big_dim = start;
        h->big_dim_len = (size_t)(c->pos - start);
    }
    *value = v;
    return CLATTN_STATUS_OK;
}

/* A tuple: "()", "(3,)", "(2, 3)", "(2, 3,)"; "(3)" is an int in Python, not a shape. */
static int parse_shape(cursor *c, npy_header *h, clattn__error *err)
{
    if (!accept(c, '('))
        return malformed(c, err, "'(' opening the shape tuple");
    int count = 0;
    int comma = 0;
    while (!accept(c, ')')) {
        long long dim = 0;
        const int status = parse_dim(c, h, &dim, err);
        if (status != CLATTN_STATUS_OK)
            return status;
        if (count < CLATTN_NPY_MAX_RANK)
            h->shape[count] = dim;
        count++;
        comma = accept(c, ',');
        if (!comma) {
            if (!accept(c, ')'))
                return malformed(c, err, "',' or ')' in the shape tuple");
            break;
        }
    }
    if (count == 1 && !comma)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED,
                           "npy header malformed: shape (%lld) is not a tuple; a 1-D shape is (%lld,)",
                           h->shape[0], h->shape[0]);
    h->rank = count;
    return CLATTN_STATUS_OK;
}

static int parse_value(cursor *c, const char *key, size_t key_len, npy_header *h, clattn__error *err)
{
    int *seen = is_token(key, key_len, "descr")           ? &h->has_descr
                : is_token(key, key_len, "fortran_order") ? &h->has_fortran
                : is_token(key, key_len, "shape")         ? &h->has_shape
                                                          : NULL;
    if (seen == NULL)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED, "npy header malformed: unknown key '%.*s'",
                           (int)(key_len > 40 ? 40 : key_len), key);
    if (*seen)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED, "npy header malformed: key '%.*s' repeated",
                           (int)key_len, key);
    *seen = 1;
    if (seen == &h->has_fortran)
        return parse_bool(c, &h->fortran_order, err);
    if (seen == &h->has_shape)
        return parse_shape(c, h, err);
    if (!parse_string(c, &h->descr, &h->descr_len))
        return clattn__fail(err, CLATTN_STATUS_FILE_DTYPE,
                           "npy descr is not a plain dtype string such as '<f4' (structured dtypes are "
                           "not supported)");
    return CLATTN_STATUS_OK;
}

static int parse_dict(cursor *c, npy_header *h, clattn__error *err)
{
    if (!accept(c, '{'))
        return malformed(c, err, "'{' opening the header dict");
    while (!accept(c, '}')) {
        const char *key = NULL;
        size_t key_len = 0;
        if (!parse_string(c, &key, &key_len))
            return malformed(c, err, "a quoted key or '}'");
        if (!accept(c, ':'))
            return malformed(c, err, "':' after a key");
        const int status = parse_value(c, key, key_len, h, err);
        if (status != CLATTN_STATUS_OK)
            return status;
        if (!accept(c, ',')) {
            if (!accept(c, '}'))
                return malformed(c, err, "',' or '}' after a value");
            break;
        }
    }
    if (next_char(c) != -1)
        return malformed(c, err, "only whitespace after the dict");
    const char *missing = !h->has_descr ? "descr" : !h->has_fortran ? "fortran_order"
                                                  : !h->has_shape   ? "shape"
                                                                    : NULL;
    if (missing != NULL)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED, "npy header malformed: no '%s' key", missing);
    return CLATTN_STATUS_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Preamble, header and data checks.
 * ------------------------------------------------------------------------------------------- */

/* Bytes before the header dict for a format major version; 0 for an unsupported one. */
static size_t preamble_size(unsigned char major)
{
    return major == 1 ? 10 : (major == 2 || major == 3) ? 12 : 0;
}

/* Checks the magic and version of `bytes` and reads the header length that follows. */
static int parse_preamble(const unsigned char *bytes, size_t size, size_t *preamble, size_t *header_len,
                          clattn__error *err)
{
    if (size == 0)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED, "empty file: no .npy magic");
    const size_t magic_bytes = size < sizeof npy_magic ? size : sizeof npy_magic;
    if (memcmp(bytes, npy_magic, magic_bytes) != 0) {
        char found[3 * sizeof npy_magic + 1] = "";
        for (size_t i = 0; i < magic_bytes; i++)
            snprintf(found + 3 * i, sizeof found - 3 * i, " %02x", bytes[i]);
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED,
                           "malformed: not a .npy file, it begins with bytes%s instead of 93 4e 55 4d 50 59",
                           found);
    }
    if (size < NPY_PREFIX_BYTES)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED,
                           "truncated: %zu bytes, shorter than the .npy preamble", size);
    *preamble = preamble_size(bytes[6]);
    if (*preamble == 0 || bytes[7] != 0)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED,
                           "malformed: unsupported .npy format version %u.%u (1.0, 2.0 and 3.0 are)",
                           bytes[6], bytes[7]);
    if (size < *preamble)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED,
                           "truncated: %zu bytes, shorter than the .npy preamble", size);
    *header_len = 0;
    for (size_t i = *preamble; i-- > NPY_PREFIX_BYTES;)
        *header_len = *header_len << 8 | bytes[i];
    if (*header_len > NPY_HEADER_LIMIT)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED, "malformed: header length %zu exceeds %d bytes",
                           *header_len, NPY_HEADER_LIMIT);
    return CLATTN_STATUS_OK;
}

/* Parses the preamble and dict of `bytes`; h->descr points into `bytes` afterwards. */
static int parse_header(const unsigned char *bytes, size_t size, npy_header *h, clattn__error *err)
{
    memset(h, 0, sizeof *h);
    size_t preamble = 0;
    size_t header_len = 0;
    const int status = parse_preamble(bytes, size, &preamble, &header_len, err);
    if (status != CLATTN_STATUS_OK)
        return status;
    if (size - preamble < header_len)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED,
                           "truncated header: %zu bytes expected, %zu present", header_len, size - preamble);
    h->data_offset = preamble + header_len;
    const char *text = (const char *)bytes + preamble;
    cursor c = {text, text, text + header_len};
    return parse_dict(&c, h, err);
}

/* Checks a parsed header against what the caller accepts; gives the element count. */
static int check_header(const npy_header *h, int min_rank, int max_rank, size_t *count,
                        clattn__error *err)
{
    if (!is_token(h->descr, h->descr_len, "<f4"))
        return clattn__fail(err, CLATTN_STATUS_FILE_DTYPE,
                           "dtype '%.*s' is not supported: only little-endian float32 '<f4' is",
                           (int)(h->descr_len > 40 ? 40 : h->descr_len), h->descr);
    if (h->fortran_order)
        return clattn__fail(err, CLATTN_STATUS_FILE_DTYPE,
                           "fortran_order is True: only C-order arrays are supported");
    if (h->rank < min_rank || h->rank > max_rank)
        return clattn__fail(err, CLATTN_STATUS_FILE_RANK, "rank %d is outside [%d, %d]", h->rank, min_rank,
                           max_rank);
    if (h->big_dim != NULL)
        return clattn__fail(err, CLATTN_STATUS_SIZE_OVERFLOW, "dimension %.*s overflows a 64-bit integer",
                           (int)(h->big_dim_len > 40 ? 40 : h->big_dim_len), h->big_dim);
    return shape_count(h->rank, h->shape, count, err);
}

static int check_data_length(const npy_header *h, size_t count, size_t actual, clattn__error *err)
{
    const size_t expected = count * sizeof(float);
    if (actual == expected)
        return CLATTN_STATUS_OK;
    char text[NPY_SHAPE_TEXT];
    format_shape(text, h->rank, h->shape);
    if (actual < expected)
        return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED,
                           "truncated data: shape %s needs %zu bytes, %zu present", text, expected, actual);
    return clattn__fail(err, CLATTN_STATUS_FILE_TRUNCATED,
                       "malformed: %zu bytes of data, shape %s needs %zu (%zu trailing)", actual, text, expected,
                       actual - expected);
}

static int alloc_tensor(const npy_header *h, size_t count, clattn_npy *out, clattn__error *err)
{
    out->rank = h->rank;
    memcpy(out->shape, h->shape, sizeof out->shape);
    out->count = count;
    if (count == 0)
        return CLATTN_STATUS_OK;
    out->data = malloc(count * sizeof(float));
    if (out->data == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%zu bytes for a tensor", count * sizeof(float));
    return CLATTN_STATUS_OK;
}

/* Little-endian bytes to host floats; src may be dst itself (each element is read whole before
 * it is written), which lets the reader convert in place. */
static void decode_floats(float *dst, const unsigned char *src, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const unsigned char *b = src + 4 * i;
        const uint32_t bits = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        memcpy(&dst[i], &bits, sizeof bits);
    }
}

static void encode_floats(unsigned char *dst, const float *src, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &src[i], sizeof bits);
        for (int k = 0; k < 4; k++)
            dst[4 * i + k] = (unsigned char)(bits >> 8 * k);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Public calls.
 * ------------------------------------------------------------------------------------------- */

void clattn_npy_free(clattn_npy *t)
{
    if (t == NULL)
        return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

int clattn_npy_parse(const unsigned char *bytes, size_t size, int min_rank, int max_rank,
                     clattn_npy *out, clattn__error *err)
{
    if (out == NULL || (bytes == NULL && size > 0))
        return clattn__fail(err, CLATTN_STATUS_NULL_ARGUMENT, "npy parse: %s is NULL", out ? "bytes" : "out");
    memset(out, 0, sizeof *out);
    npy_header h;
    size_t count = 0;
    int status = check_rank_range(min_rank, max_rank, err);
    if (status == CLATTN_STATUS_OK)
        status = parse_header(bytes, size, &h, err);
    if (status == CLATTN_STATUS_OK)
        status = check_header(&h, min_rank, max_rank, &count, err);
    if (status == CLATTN_STATUS_OK)
        status = check_data_length(&h, count, size - h.data_offset, err);
    if (status == CLATTN_STATUS_OK)
        status = alloc_tensor(&h, count, out, err);
    if (status == CLATTN_STATUS_OK)
        decode_floats(out->data, bytes + h.data_offset, count);
    else
        clattn_npy_free(out);
    return status;
}

static int read_error(clattn__error *err)
{
    return clattn__fail(err, CLATTN_STATUS_FILE_IO, "read error: %s", strerror(errno));
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
static int read_stream(FILE *f, int min_rank, int max_rank, clattn_npy *out, clattn__error *err)
{
    unsigned char preamble[NPY_PREAMBLE_MAX];
    size_t got = fread(preamble, 1, NPY_PREFIX_BYTES, f);
    if (got == NPY_PREFIX_BYTES && preamble_size(preamble[6]) > got)
        got += fread(preamble + got, 1, preamble_size(preamble[6]) - got, f);
    if (ferror(f))
        return read_error(err);
    size_t preamble_len = 0;
    size_t header_len = 0;
    int status = parse_preamble(preamble, got, &preamble_len, &header_len, err);
    if (status != CLATTN_STATUS_OK)
        return status;

    unsigned char *header = malloc(preamble_len + header_len);
    if (header == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%zu bytes for the npy header", header_len);
    memcpy(header, preamble, preamble_len);
    const size_t header_got = preamble_len + fread(header + preamble_len, 1, header_len, f);
    npy_header h;
    size_t count = 0;
    status = ferror(f) ? read_error(err) : parse_header(header, header_got, &h, err);
    if (status == CLATTN_STATUS_OK)
        status = check_header(&h, min_rank, max_rank, &count, err);
    size_t in_file = 0;
    if (status == CLATTN_STATUS_OK && data_bytes_in_file(f, &in_file))
        status = check_data_length(&h, count, in_file, err);
    if (status == CLATTN_STATUS_OK)
        status = alloc_tensor(&h, count, out, err);
    if (status == CLATTN_STATUS_OK) {
        /* checked again while reading, for streams that cannot seek and files that change;
         * in bytes, so that a partial last element is counted too */
        const size_t data_got = count ? fread(out->data, 1, count * sizeof(float), f) : 0;
        const size_t rest = count_rest(f);
        status = ferror(f) ? read_error(err) : check_data_length(&h, count, data_got + rest, err);
    }
    if (status == CLATTN_STATUS_OK)
        decode_floats(out->data, (const unsigned char *)out->data, count);
    free(header);
    return status;
}

int clattn_npy_read(const char *path, int min_rank, int max_rank, clattn_npy *out, clattn__error *err)
{
    if (out == NULL || path == NULL)
        return clattn__fail(err, CLATTN_STATUS_NULL_ARGUMENT, "npy read: %s is NULL", out ? "path" : "out");
    memset(out, 0, sizeof *out);
    clattn__error inner; /* the message without the path, which is prefixed at the end */
    int status = check_rank_range(min_rank, max_rank, &inner);
    FILE *f = NULL;
    if (status == CLATTN_STATUS_OK && (f = fopen(path, "rb")) == NULL)
        status = clattn__fail(&inner, CLATTN_STATUS_FILE_IO, "cannot open: %s", strerror(errno));
    if (status == CLATTN_STATUS_OK) {
        status = read_stream(f, min_rank, max_rank, out, &inner);
        fclose(f); /* read-only: a close error loses nothing */
    }
    if (status == CLATTN_STATUS_OK)
        return status;
    clattn_npy_free(out);
    return clattn__fail(err, status, "%s: %s", path, inner.text);
}

/* ---------------------------------------------------------------------------------------------
 * Writer.
 * ------------------------------------------------------------------------------------------- */

/* The 1.0 preamble and dict, padded with spaces and ended by '\n' so that the data starts at a
 * multiple of 64 bytes (NumPy's own alignment, which lets readers map the data aligned). */
static size_t format_header(unsigned char *dst, size_t capacity, int rank, const long long *shape)
{
    char text[NPY_SHAPE_TEXT];
    format_shape(text, rank, shape);
    char *dict = (char *)dst + 10;
    const int dict_len = snprintf(dict, capacity - 10, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }",
                                  text);
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

static int check_write_args(const char *path, int rank, const long long *shape, const float *data,
                            size_t *count, clattn__error *err)
{
    if (path == NULL || shape == NULL)
        return clattn__fail(err, CLATTN_STATUS_NULL_ARGUMENT, "npy write: %s is NULL", path ? "shape" : "path");
    if (rank < 1 || rank > CLATTN_NPY_MAX_RANK)
        return clattn__fail(err, CLATTN_STATUS_FILE_RANK, "%s: rank %d is outside [1, %d]", path, rank,
                           CLATTN_NPY_MAX_RANK);
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return clattn__fail(err, CLATTN_STATUS_INVALID_SIZE, "%s: shape[%d] = %lld is negative", path, i,
                               shape[i]);
    }
    const int status = shape_count(rank, shape, count, err);
    if (status == CLATTN_STATUS_OK && data == NULL && *count > 0)
        return clattn__fail(err, CLATTN_STATUS_NULL_ARGUMENT, "%s: data is NULL for %zu elements", path, *count);
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

static int write_stream(FILE *f, int rank, const long long *shape, const float *data, size_t count)
{
    unsigned char buffer[16384]; /* header, then chunks of little-endian data */
    const size_t header_len = format_header(buffer, sizeof buffer, rank, shape);
    if (fwrite(buffer, 1, header_len, f) != header_len)
        return 0;
    const size_t chunk = sizeof buffer / sizeof(float);
    for (size_t done = 0; done < count; done += chunk) {
        const size_t n = count - done < chunk ? count - done : chunk;
        encode_floats(buffer, data + done, n);
        if (fwrite(buffer, sizeof(float), n, f) != n)
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

int clattn_npy_write(const char *path, int rank, const long long *shape, const float *data,
                     clattn__error *err)
{
    size_t count = 0;
    int status = check_write_args(path, rank, shape, data, &count, err);
    if (status != CLATTN_STATUS_OK)
        return status;
    const size_t temp_size = strlen(path) + 16;
    char *temp = malloc(temp_size);
    if (temp == NULL)
        return clattn__fail(err, CLATTN_STATUS_HOST_OUT_OF_MEMORY, "%s: temporary file name", path);
    FILE *f = open_temp(path, temp, temp_size);
    if (f == NULL) {
        status = clattn__fail(err, CLATTN_STATUS_FILE_IO, "%s: cannot create a temporary file: %s", path,
                             strerror(errno));
    } else {
        const int written = write_stream(f, rank, shape, data, count);
        const int saved = errno;
        const int closed = fclose(f) == 0;
        if (!written || !closed)
            status = clattn__fail(err, CLATTN_STATUS_FILE_IO, "%s: cannot write: %s", path,
                                 strerror(written ? errno : saved));
        else if (replace_file(temp, path) != 0)
            status = clattn__fail(err, CLATTN_STATUS_FILE_IO, "%s: cannot replace with %s: %s", path, temp,
                                 strerror(errno));
        if (status != CLATTN_STATUS_OK)
            remove(temp);
    }
    free(temp);
    return status;
}

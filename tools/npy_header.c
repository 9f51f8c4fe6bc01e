/* The .npy preamble and header dict, parsed into what the header says: its syntax only, checked
 * byte by byte against hostile input. What the values may be (dtype, rank, sizes) is npy.c's. */
#include "npy_header.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "clattn.h"

/* A float32 header is under 200 bytes; the cap keeps a hostile length field from making the
 * reader allocate gigabytes before it finds that the file is short. */
#define NPY_HEADER_LIMIT 65536

typedef struct {
    const char *begin, *pos, *end;
} cursor;

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

static int malformed(const cursor *c, tool_error *err, const char *expected)
{
    if (c->pos >= c->end)
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED,
                         "npy header malformed: it ends inside the dict (unterminated) where %s was "
                         "expected",
                         expected);
    const unsigned char found = (unsigned char)*c->pos;
    const size_t at = (size_t)(c->pos - c->begin);
    if (found >= 0x20 && found < 0x7f)
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED,
                         "npy header malformed at header byte %zu: found '%c' where %s was expected", at, found,
                         expected);
    return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED,
                     "npy header malformed at header byte %zu: found byte 0x%02x where %s was expected", at, found,
                     expected);
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

static int parse_bool(cursor *c, int *value, tool_error *err)
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
static int parse_dim(cursor *c, npy_header *h, long long *value, tool_error *err)
{
    if (next_char(c) == '-') {
        const char *start = c->pos++;
        while (c->pos < c->end && *c->pos >= '0' && *c->pos <= '9')
            c->pos++;
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED, "npy header malformed: negative dimension %.*s",
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
static int parse_shape(cursor *c, npy_header *h, tool_error *err)
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
        if (count < NPY_MAX_RANK)
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
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED,
                         "npy header malformed: shape (%lld) is not a tuple; a 1-D shape is (%lld,)", h->shape[0],
                         h->shape[0]);
    h->rank = count;
    return CLATTN_STATUS_OK;
}

static int parse_value(cursor *c, const char *key, size_t key_len, npy_header *h, tool_error *err)
{
    int *seen = is_token(key, key_len, "descr")           ? &h->has_descr
                : is_token(key, key_len, "fortran_order") ? &h->has_fortran
                : is_token(key, key_len, "shape")         ? &h->has_shape
                                                          : NULL;
    if (seen == NULL)
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED, "npy header malformed: unknown key '%.*s'",
                         (int)(key_len > 40 ? 40 : key_len), key);
    if (*seen)
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED, "npy header malformed: key '%.*s' repeated", (int)key_len,
                         key);
    *seen = 1;
    if (seen == &h->has_fortran)
        return parse_bool(c, &h->fortran_order, err);
    if (seen == &h->has_shape)
        return parse_shape(c, h, err);
    if (!parse_string(c, &h->descr, &h->descr_len))
        return tool_fail(err, TOOL_STATUS_FILE_DTYPE,
                         "npy descr is not a plain dtype string such as '<f4' (structured dtypes are "
                         "not supported)");
    return CLATTN_STATUS_OK;
}

static int parse_dict(cursor *c, npy_header *h, tool_error *err)
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
    const char *missing = !h->has_descr ? "descr" : !h->has_fortran ? "fortran_order" : !h->has_shape ? "shape" : NULL;
    if (missing != NULL)
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED, "npy header malformed: no '%s' key", missing);
    return CLATTN_STATUS_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Preamble and header.
 * ------------------------------------------------------------------------------------------- */

const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

size_t npy_preamble_size(unsigned char major)
{
    return major == 1 ? 10 : (major == 2 || major == 3) ? 12 : 0;
}

int npy_preamble_parse(const unsigned char *bytes, size_t size, size_t *preamble, size_t *header_len, tool_error *err)
{
    if (size == 0)
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED, "empty file: no .npy magic");
    const size_t magic_bytes = size < sizeof npy_magic ? size : sizeof npy_magic;
    if (memcmp(bytes, npy_magic, magic_bytes) != 0) {
        char found[3 * sizeof npy_magic + 1] = "";
        for (size_t i = 0; i < magic_bytes; i++)
            snprintf(found + 3 * i, sizeof found - 3 * i, " %02x", bytes[i]);
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED,
                         "malformed: not a .npy file, it begins with bytes%s instead of 93 4e 55 4d 50 59", found);
    }
    if (size < NPY_PREFIX_BYTES)
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED, "truncated: %zu bytes, shorter than the .npy preamble", size);
    *preamble = npy_preamble_size(bytes[6]);
    if (*preamble == 0 || bytes[7] != 0)
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED,
                         "malformed: unsupported .npy format version %u.%u (1.0, 2.0 and 3.0 are)", bytes[6], bytes[7]);
    if (size < *preamble)
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED, "truncated: %zu bytes, shorter than the .npy preamble", size);
    *header_len = 0;
    for (size_t i = *preamble; i-- > NPY_PREFIX_BYTES;)
        *header_len = *header_len << 8 | bytes[i];
    if (*header_len > NPY_HEADER_LIMIT)
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED, "malformed: header length %zu exceeds %d bytes", *header_len,
                         NPY_HEADER_LIMIT);
    return CLATTN_STATUS_OK;
}

int npy_header_parse(const unsigned char *bytes, size_t size, npy_header *h, tool_error *err)
{
    memset(h, 0, sizeof *h);
    size_t preamble = 0;
    size_t header_len = 0;
    const int status = npy_preamble_parse(bytes, size, &preamble, &header_len, err);
    if (status != CLATTN_STATUS_OK)
        return status;
    if (size - preamble < header_len)
        return tool_fail(err, TOOL_STATUS_FILE_TRUNCATED, "truncated header: %zu bytes expected, %zu present",
                         header_len, size - preamble);
    h->data_offset = preamble + header_len;
    const char *text = (const char *)bytes + preamble;
    cursor c = {text, text, text + header_len};
    return parse_dict(&c, h, err);
}

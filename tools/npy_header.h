/* The .npy preamble and header dict (format 1.0, 2.0, 3.0), for npy.c only: the file reader
 * parses the preamble first to learn how much header to read, the in-memory parser all at once. */
#ifndef TOOL_NPY_HEADER_H
#define TOOL_NPY_HEADER_H

#include <stddef.h>

#include "npy.h"

/* magic, major, minor, then a 2-byte (1.0) or 4-byte (2.0, 3.0) little-endian header length */
#define NPY_PREFIX_BYTES 8
#define NPY_PREAMBLE_MAX 12

extern const unsigned char npy_magic[6]; /* "\x93NUMPY" */

typedef struct {
    size_t data_offset; /* preamble + header: where the array bytes start */
    const char *descr;  /* points into the header */
    size_t descr_len;
    int has_descr, has_fortran, has_shape;
    int fortran_order;
    int rank; /* number of entries in the shape tuple, even beyond NPY_MAX_RANK */
    long long shape[NPY_MAX_RANK];
    const char *big_dim; /* first dimension too large for long long, NULL when none */
    size_t big_dim_len;
} npy_header;

/* Bytes before the header dict for a format major version; 0 for an unsupported one. */
size_t npy_preamble_size(unsigned char major);

/* Checks the magic and version of `bytes` and reads the header length that follows:
 * FILE_TRUNCATED when they are short, wrong or announce a header over 64 KiB. */
int npy_preamble_parse(const unsigned char *bytes, size_t size, size_t *preamble, size_t *header_len, tool_error *err);

/* Parses the preamble and dict of `bytes`; h->descr points into `bytes` afterwards. FILE_TRUNCATED
 * for malformed syntax, FILE_DTYPE for a descr that is not a plain string. */
int npy_header_parse(const unsigned char *bytes, size_t size, npy_header *h, tool_error *err);

#endif

/* Error reporting inside the library: a status plus a message that names the argument and its
 * value. Nothing here prints; the message travels back to the context (or the caller). */
#ifndef CLATTN_ERROR_H
#define CLATTN_ERROR_H

#include <stddef.h>

#define CLATTN_MESSAGE_SIZE 1024

typedef struct {
    char text[CLATTN_MESSAGE_SIZE];
} clattn__error;

/* Formats the message into err (when not NULL) and returns status, so that a failure reads
 * `return clattn__fail(err, CLATTN_STATUS_INVALID_SIZE, "q_len = %d", n);` */
int clattn__fail(clattn__error *err, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"), or "CL_UNKNOWN_ERROR". */
const char *clattn__cl_error_name(int code);

#endif

/* The tool's own failures: statuses the library does not have (tensor files, usage) and a
 * message buffer filled printf-style, so that .npy I/O and argument parsing report as the
 * library does without reaching into its private headers. */
#ifndef TOOL_ERROR_H
#define TOOL_ERROR_H

/* 1016-1019 are the numbers these had in the library's table, which retired them when .npy I/O
 * moved here; the tool's newer codes start at 2001, above any the library will reach. */
#define TOOL_STATUS_TABLE(X)                                                                                           \
    X(FILE_IO, 1016, "a file could not be opened, read or written")                                                    \
    X(FILE_TRUNCATED, 1017, "a tensor file is truncated or malformed")                                                 \
    X(FILE_DTYPE, 1018, "a tensor file has the wrong dtype or byte order")                                             \
    X(FILE_RANK, 1019, "a tensor file has the wrong rank")                                                             \
    X(USAGE, 2001, "bad command-line usage")

typedef enum {
#define TOOL_STATUS_ENUM_(name, value, text) TOOL_STATUS_##name = value,
    TOOL_STATUS_TABLE(TOOL_STATUS_ENUM_)
#undef TOOL_STATUS_ENUM_
} tool_status;

typedef struct {
    char text[1024];
} tool_error;

/* Formats the message into err and returns status, so that a failure reads
 * `return tool_fail(err, TOOL_STATUS_FILE_RANK, "rank %d", rank);` */
int tool_fail(tool_error *err, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif

/* The tool's exit statuses, the one mapping from a status to them and the one text for a status,
 * shared by `clattn run`, `clattn bench` and `clattn tune`. */
#ifndef CLATTN_EXIT_STATUS_H
#define CLATTN_EXIT_STATUS_H

#include "clattn.h"
#include "tool_error.h"

#define EXIT_USAGE 2   /* bad input or usage: the caller's to fix */
#define EXIT_RUNTIME 3 /* a device or runtime failure */

/* Bad input (an unreadable input file and the tool's own statuses included) is the caller's
 * fault; the rest is the device's or the runtime's. */
static inline int clattn_exit_status(int status)
{
    if (status == CLATTN_STATUS_OK)
        return 0;
    if (status < 0 || status == CLATTN_STATUS_NO_DEVICE || status == CLATTN_STATUS_DEVICE_LIMIT ||
        status == CLATTN_STATUS_HOST_OUT_OF_MEMORY)
        return EXIT_RUNTIME;
    return EXIT_USAGE;
}

/* The text of a tool status, else the library's text; never NULL. */
static inline const char *tool_status_string(int status)
{
    switch (status) {
#define TOOL_STATUS_CASE_(name, value, text)                                                                           \
    case value:                                                                                                        \
        return text;
        TOOL_STATUS_TABLE(TOOL_STATUS_CASE_)
#undef TOOL_STATUS_CASE_
    default:
        return clattn_status_string(status);
    }
}

#endif

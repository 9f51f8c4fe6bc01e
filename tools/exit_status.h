/* The tool's exit statuses and the one mapping from a library status to them, shared by
 * `clattn run`, `clattn bench` and `clattn tune`. */
#ifndef CLATTN_EXIT_STATUS_H
#define CLATTN_EXIT_STATUS_H

#include "clattn.h"

#define EXIT_USAGE 2   /* bad input or usage: the caller's to fix */
#define EXIT_RUNTIME 3 /* a device or runtime failure */

/* Bad input (an unreadable input file included) is the caller's fault; the rest is the
 * device's or the runtime's. */
static inline int clattn_exit_status(int status)
{
    if (status == CLATTN_STATUS_OK)
        return 0;
    if (status < 0 || status == CLATTN_STATUS_NO_DEVICE || status == CLATTN_STATUS_DEVICE_LIMIT ||
        status == CLATTN_STATUS_HOST_OUT_OF_MEMORY)
        return EXIT_RUNTIME;
    return EXIT_USAGE;
}

#endif

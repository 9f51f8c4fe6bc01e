/* Status strings and names (generated from the table in clattn.h), OpenCL error names, and the
 * formatting helper every validation uses. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

#include "clattn.h"

int clattn__fail(clattn__error *err, int status, const char *fmt, ...)
{
    if (err != NULL) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err->text, sizeof err->text, fmt, args);
        va_end(args);
    }
    return status;
}

const char *clattn__cl_error_name(int code)
{
    switch (code) {
#define CLATTN_CL_NAME_(c)                                                                                             \
    case c:                                                                                                            \
        return #c;
        CLATTN_CL_NAME_(CL_DEVICE_NOT_FOUND)
        CLATTN_CL_NAME_(CL_DEVICE_NOT_AVAILABLE)
        CLATTN_CL_NAME_(CL_COMPILER_NOT_AVAILABLE)
        CLATTN_CL_NAME_(CL_MEM_OBJECT_ALLOCATION_FAILURE)
        CLATTN_CL_NAME_(CL_OUT_OF_RESOURCES)
        CLATTN_CL_NAME_(CL_OUT_OF_HOST_MEMORY)
        CLATTN_CL_NAME_(CL_PROFILING_INFO_NOT_AVAILABLE)
        CLATTN_CL_NAME_(CL_MEM_COPY_OVERLAP)
        CLATTN_CL_NAME_(CL_BUILD_PROGRAM_FAILURE)
        CLATTN_CL_NAME_(CL_MAP_FAILURE)
        CLATTN_CL_NAME_(CL_MISALIGNED_SUB_BUFFER_OFFSET)
        CLATTN_CL_NAME_(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
        CLATTN_CL_NAME_(CL_COMPILE_PROGRAM_FAILURE)
        CLATTN_CL_NAME_(CL_LINK_PROGRAM_FAILURE)
        CLATTN_CL_NAME_(CL_INVALID_VALUE)
        CLATTN_CL_NAME_(CL_INVALID_DEVICE_TYPE)
        CLATTN_CL_NAME_(CL_INVALID_PLATFORM)
        CLATTN_CL_NAME_(CL_INVALID_DEVICE)
        CLATTN_CL_NAME_(CL_INVALID_CONTEXT)
        CLATTN_CL_NAME_(CL_INVALID_QUEUE_PROPERTIES)
        CLATTN_CL_NAME_(CL_INVALID_COMMAND_QUEUE)
        CLATTN_CL_NAME_(CL_INVALID_HOST_PTR)
        CLATTN_CL_NAME_(CL_INVALID_MEM_OBJECT)
        CLATTN_CL_NAME_(CL_INVALID_BINARY)
        CLATTN_CL_NAME_(CL_INVALID_BUILD_OPTIONS)
        CLATTN_CL_NAME_(CL_INVALID_PROGRAM)
        CLATTN_CL_NAME_(CL_INVALID_PROGRAM_EXECUTABLE)
        CLATTN_CL_NAME_(CL_INVALID_KERNEL_NAME)
        CLATTN_CL_NAME_(CL_INVALID_KERNEL)
        CLATTN_CL_NAME_(CL_INVALID_ARG_INDEX)
        CLATTN_CL_NAME_(CL_INVALID_ARG_VALUE)
        CLATTN_CL_NAME_(CL_INVALID_ARG_SIZE)
        CLATTN_CL_NAME_(CL_INVALID_KERNEL_ARGS)
        CLATTN_CL_NAME_(CL_INVALID_WORK_DIMENSION)
        CLATTN_CL_NAME_(CL_INVALID_WORK_GROUP_SIZE)
        CLATTN_CL_NAME_(CL_INVALID_WORK_ITEM_SIZE)
        CLATTN_CL_NAME_(CL_INVALID_GLOBAL_OFFSET)
        CLATTN_CL_NAME_(CL_INVALID_EVENT_WAIT_LIST)
        CLATTN_CL_NAME_(CL_INVALID_EVENT)
        CLATTN_CL_NAME_(CL_INVALID_OPERATION)
        CLATTN_CL_NAME_(CL_INVALID_BUFFER_SIZE)
        CLATTN_CL_NAME_(CL_INVALID_GLOBAL_WORK_SIZE)
#undef CLATTN_CL_NAME_
    default:
        return "CL_UNKNOWN_ERROR";
    }
}

const char *clattn_status_string(int status)
{
    switch (status) {
#define CLATTN_STATUS_CASE_(name, value, text)                                                                         \
    case value:                                                                                                        \
        return text;
        CLATTN_STATUS_TABLE(CLATTN_STATUS_CASE_)
#undef CLATTN_STATUS_CASE_
    default:
        return status < 0 ? clattn__cl_error_name(status) : "unknown clattn status";
    }
}

const char *clattn_status_name(int status)
{
    switch (status) {
#define CLATTN_STATUS_NAME_(name, value, text)                                                                         \
    case value:                                                                                                        \
        return "CLATTN_STATUS_" #name;
        CLATTN_STATUS_TABLE(CLATTN_STATUS_NAME_)
#undef CLATTN_STATUS_NAME_
    default:
        return status < 0 ? clattn__cl_error_name(status) : "CLATTN_STATUS_UNKNOWN";
    }
}

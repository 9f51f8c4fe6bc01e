/* The tool's message formatting (see tool_error.h). */
#include "tool_error.h"

#include <stdarg.h>
#include <stdio.h>

int tool_fail(tool_error *err, int status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, args);
    va_end(args);
    return status;
}

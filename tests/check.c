/* The test programs' failure counting and reporting (check.h), in one place. Each test is one
 * process; the device tests may run checks from several threads only after joining them. */
#include "check.h"

#include <stdarg.h>
#include <stdio.h>

static int checks, failures;

static void count(int ok)
{
    checks++;
    failures += !ok;
}

int check(int ok, const char *fmt, ...)
{
    count(ok);
    printf("%-4s ", ok ? "ok" : "FAIL");
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout); /* in order with the library's messages on stderr and with child processes */
    return ok;
}

int check_at(const char *func, int line, int ok, const char *fmt, ...)
{
    count(ok);
    if (!ok) {
        printf("FAIL %s:%d: ", func, line);
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
    }
    return ok;
}

int check_failures(void)
{
    return failures;
}

int check_exit(void)
{
    printf("%d check(s), %d failure(s)\n", checks, failures);
    return failures != 0;
}

int check_skip(const char *reason)
{
    printf("SKIP: %s\n", reason);
    return CHECK_SKIP;
}

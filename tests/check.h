/* The one failure counter of a test program: each check is counted, a failure printed with what
 * was checked, and the exit status (0, 1, or 77 for ctest's skip) derived from the count.
 * Plain C, no OpenCL: the unit tests that do not link the device harness use it too. */
#ifndef CLATTN_CHECK_H
#define CLATTN_CHECK_H

#define CHECK_SKIP 77 /* ctest's SKIP_RETURN_CODE */

#if defined(__GNUC__) || defined(__clang__)
#define CHECK_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CHECK_PRINTF(fmt, args)
#endif

/* Counts one check and prints its line, "ok   <message>" or "FAIL <message>". Returns ok. */
int check(int ok, const char *fmt, ...) CHECK_PRINTF(2, 3);

/* Counts one check and prints "FAIL <func>:<line>: <message>" only when it fails: for checks
 * too many to list one by one (every element of an output). Use it through CHECK. */
int check_at(const char *func, int line, int ok, const char *fmt, ...) CHECK_PRINTF(4, 5);
#define CHECK(cond, ...) check_at(__func__, __LINE__, (cond) != 0, __VA_ARGS__)

int check_failures(void);

/* Prints "<checks> check(s), <failures> failure(s)" and returns the exit status: 0 or 1. */
int check_exit(void);

/* Prints "SKIP: <reason>" and returns CHECK_SKIP, for main to return. */
int check_skip(const char *reason);

#endif

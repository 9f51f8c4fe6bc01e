/* libFuzzer target: `clattn run` argument parsing. The input is split at NUL bytes into an
 * argument vector, so the fuzzer can build flags and values of its own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "run_args.h"

#define MAX_ARGS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *argv[MAX_ARGS + 2] = {"run"};
    int argc = 1;
    for (size_t i = 0; i <= size && argc <= MAX_ARGS; i += strlen(text + i) + 1)
        argv[argc++] = text + i;
    argv[argc] = NULL;
    run_args args;
    memset(&args, 0, sizeof args);
    run_args_parse(argc, argv, &args);
    run_args_free(&args);
    free(text);
    return 0;
}

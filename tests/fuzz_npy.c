/* libFuzzer target for the .npy parser: tensor files come from users, so any byte string must
 * give a status, never a crash, an out-of-bounds read or a leak. Build with
 *   clang -g -fsanitize=fuzzer,address,undefined -I include -I tools tests/fuzz_npy.c tools/npy.c \
 *     tools/npy_header.c tools/tool_error.c */
#include <stddef.h>
#include <stdint.h>

#include "clattn.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    npy_tensor tensor;
    tool_error err;
    if (npy_parse(data, size, 1, NPY_MAX_RANK, &tensor, &err) == CLATTN_STATUS_OK) {
        /* touch every byte of every element (float32, float16 or bfloat16) so that a short
         * allocation shows up under the sanitizer */
        volatile unsigned sum = 0;
        const unsigned char *bytes = tensor.data;
        for (size_t i = 0; i < tensor.count * npy_dtype_size(tensor.dtype); i++)
            sum += bytes[i];
        (void)sum;
    }
    npy_free(&tensor);
    return 0;
}

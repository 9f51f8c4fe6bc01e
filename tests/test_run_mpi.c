/* `clattn run ... --mpi` end to end (argv[1]: the tool, argv[2]: mpiexec): three ranks, rank 0
 * reading and writing the .npy files, must write what one process writes (within 2e-4) for a
 * window with global tokens, causal with padding and a decode, and in float16 and bfloat16
 * storage (within 2e-4 beyond one ulp of that storage: two roundings of one value); a missing
 * input must fail every rank with the tool's usage status and write nothing. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "npy_files.h"
#include "storage.h"

#define TOLERANCE 2e-4

static char dir[64];

static int write_random_as(const char *name, clattn_dtype dtype, int b, int h, int n, int d, unsigned long long seed)
{
    const long long shape[4] = {b, h, n, d};
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    tool_error err;
    return npy_files_random(path, dtype, 4, shape, &seed, NULL, &err) == CLATTN_STATUS_OK;
}

static int write_random(const char *name, int b, int h, int n, int d, unsigned long long seed)
{
    return write_random_as(name, CLATTN_DTYPE_F32, b, h, n, d, seed);
}

/* The exit status of a shell command (-1 when it did not exit). */
static int shell(const char *command)
{
    const int rc = system(command);
    return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The largest difference between two files of one storage type beyond one ulp of that type (two
 * roundings of one value; none in float32); infinity when they differ in type or shape. */
static double file_diff(const char *a, const char *b)
{
    char pa[128], pb[128];
    snprintf(pa, sizeof pa, "%s/%s", dir, a);
    snprintf(pb, sizeof pb, "%s/%s", dir, b);
    npy_tensor x = {0}, y = {0};
    tool_error err;
    double worst = INFINITY;
    float *wide = NULL;
    if (npy_read(pa, 1, 4, &x, &err) == 0 && npy_read(pb, 1, 4, &y, &err) == 0 && x.dtype == y.dtype &&
        x.count == y.count && x.rank == y.rank && memcmp(x.shape, y.shape, sizeof x.shape) == 0 &&
        (wide = malloc(y.count * sizeof *wide + 1)) != NULL) {
        storage_widen(y.dtype, y.data, wide, y.count);
        worst = storage_error(x.dtype, x.data, wide, x.count, 1.0);
    }
    free(wide);
    npy_free(&y);
    npy_free(&x);
    return worst;
}

static void check_pattern(const char *tool, const char *mpiexec, const char *device, const char *what,
                          const char *inputs, const char *flags)
{
    char one[1024], many[1024];
    snprintf(one, sizeof one, "%s run %s --out %s/one.npy --lse %s/one_lse.npy %s --device %s", tool, inputs, dir, dir,
             flags, device);
    snprintf(many, sizeof many,
             "%s -n 3 --oversubscribe %s run %s --out %s/many.npy --lse %s/many_lse.npy %s --device %s --mpi", mpiexec,
             tool, inputs, dir, dir, flags, device);
    const int a = shell(one), b = shell(many);
    const double e =
        a == 0 && b == 0 ? fmax(file_diff("one.npy", "many.npy"), file_diff("one_lse.npy", "many_lse.npy")) : INFINITY;
    check(a == 0 && b == 0 && e <= TOLERANCE, "%-28s one process exit %d, 3 ranks exit %d, max difference %.2e", what,
          a, b, e);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return check_skip("usage: test_run_mpi TOOL MPIEXEC");
    char specs[HARNESS_MAX_DEVICES][16];
    if (harness_devices(specs, HARNESS_MAX_DEVICES) == 0)
        return check_skip(HARNESS_NO_DEVICE);
    snprintf(dir, sizeof dir, "/tmp/clattn_run_mpi_XXXXXX");
    if (mkdtemp(dir) == NULL || !write_random("q.npy", 2, 4, 75, 32, 1) || !write_random("k.npy", 2, 2, 75, 32, 2) ||
        !write_random("v.npy", 2, 2, 75, 32, 3) || !write_random("qd.npy", 2, 4, 1, 32, 4) ||
        !write_random("kx.npy", 2, 2, 3, 32, 5) || !write_random("vx.npy", 2, 2, 3, 32, 6) ||
        !write_random_as("q16.npy", CLATTN_DTYPE_F16, 2, 4, 75, 32, 1) ||
        !write_random_as("k16.npy", CLATTN_DTYPE_F16, 2, 2, 75, 32, 2) ||
        !write_random_as("v16.npy", CLATTN_DTYPE_F16, 2, 2, 75, 32, 3) ||
        !write_random_as("qb.npy", CLATTN_DTYPE_BF16, 2, 4, 1, 32, 4) ||
        !write_random_as("kb.npy", CLATTN_DTYPE_BF16, 2, 2, 75, 32, 2) ||
        !write_random_as("vb.npy", CLATTN_DTYPE_BF16, 2, 2, 75, 32, 3) ||
        !write_random_as("kxb.npy", CLATTN_DTYPE_BF16, 2, 2, 3, 32, 5) ||
        !write_random_as("vxb.npy", CLATTN_DTYPE_BF16, 2, 2, 3, 32, 6)) {
        check(0, "setup: writing the inputs in %s", dir);
        return check_exit();
    }
    char inputs[512], decode[512];
    snprintf(inputs, sizeof inputs, "--q %s/q.npy --k %s/k.npy --v %s/v.npy", dir, dir, dir);
    snprintf(decode, sizeof decode, "--q %s/qd.npy --k %s/k.npy --v %s/v.npy", dir, dir, dir);
    check_pattern(argv[1], argv[2], specs[0], "window + globals", inputs, "--window 9,4 --global 3,40,70");
    char extra[256];
    snprintf(extra, sizeof extra, "--causal --seq-lens 75,41 --kx %s/kx.npy --vx %s/vx.npy", dir, dir);
    check_pattern(argv[1], argv[2], specs[0], "causal padding extra keys", inputs, extra);
    check_pattern(argv[1], argv[2], specs[0], "decode causal", decode, "--causal");
    char half[512], bf16[512], bf16_extra[256];
    snprintf(half, sizeof half, "--q %s/q16.npy --k %s/k16.npy --v %s/v16.npy", dir, dir, dir);
    snprintf(bf16, sizeof bf16, "--q %s/qb.npy --k %s/kb.npy --v %s/vb.npy", dir, dir, dir);
    snprintf(bf16_extra, sizeof bf16_extra, "--causal --kx %s/kxb.npy --vx %s/vxb.npy", dir, dir);
    check_pattern(argv[1], argv[2], specs[0], "float16 window + globals", half, "--window 9,4 --global 3,40,70");
    check_pattern(argv[1], argv[2], specs[0], "bfloat16 decode extra keys", bf16, bf16_extra);
    char missing[1024], out[128];
    snprintf(missing, sizeof missing,
             "%s -n 3 --oversubscribe %s run --q %s/absent.npy --k %s/k.npy --v %s/v.npy "
             "--out %s/bad.npy --device %s --mpi 2>/dev/null",
             argv[2], argv[1], dir, dir, dir, dir, specs[0]);
    snprintf(out, sizeof out, "%s/bad.npy", dir);
    const int rc = shell(missing);
    check(rc == 2 && access(out, F_OK) != 0, "a missing input: 3 ranks exit %d (2 expected), nothing written", rc);
    char clean[128];
    snprintf(clean, sizeof clean, "rm -rf %s", dir);
    shell(clean);
    return check_exit();
}

/* End-to-end tests of the `clattn` tool (path in argv[1]): every pattern run on the default device
 * and on the reference path through .npy files must agree; float16 and bfloat16 files, on both,
 * must agree with the float32 reference of their rounded values within SPEC.md's tolerance and
 * be written back in their type; bad input (mixed storage types among it) must exit 2 (device
 * trouble 3) with a message naming the culprit, write nothing, and no run may end by a signal. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, fork, execv, waitpid, truncate, opendir */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "npy_files.h"
#include "storage.h"

#define TOLERANCE 2e-4
#define MAX_ARGS 40
#define ARG_SIZE 256
#define TEXT_SIZE 4096

static const char *tool;  /* the clattn binary under test */
static char scratch[200]; /* mkdtemp directory: inputs, captured stdout/stderr */
static char outdir[220];  /* scratch/out: every file the tool writes, empty between checks */
static int runs, signalled;

/* ----------------------------------------------------------------------------------------- */
/* Files and the scratch directory                                                            */
/* ----------------------------------------------------------------------------------------- */

/* "@name" is scratch/name; anything else is taken as it is. */
static void expand(char *dst, const char *text)
{
    if (text[0] == '@')
        snprintf(dst, ARG_SIZE, "%s/%s", scratch, text + 1);
    else
        snprintf(dst, ARG_SIZE, "%s", text);
}

/* Removes the plain files of dir; returns how many there were (-1 when dir cannot be read). */
static int clear_dir(const char *dir, int remove)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char path[ARG_SIZE + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || lstat(path, &st) != 0 || S_ISDIR(st.st_mode))
            continue;
        n++;
        if (remove)
            unlink(path);
    }
    closedir(d);
    return n;
}

static void read_text(const char *path, char *dst, size_t size)
{
    FILE *f = fopen(path, "rb");
    const size_t n = f != NULL ? fread(dst, 1, size - 1, f) : 0;
    dst[n] = '\0';
    if (f != NULL)
        fclose(f);
}

/* A random unit-normal tensor of the last `rank` dimensions of [b, h, n, d], rounded to `dtype`;
 * `widened`, when not NULL, names a float32 file of the same rounded values, written beside it. */
static int write_random_as(const char *name, const char *widened, clattn_dtype dtype, int rank, int b, int h, int n,
                           int d, unsigned long long seed)
{
    const long long full[4] = {b, h, n, d};
    const size_t count = (size_t)b * h * n * d;
    float *x = malloc(count * sizeof *x + 1);
    char path[ARG_SIZE], wide_path[ARG_SIZE];
    tool_error err = {"out of memory"};
    expand(path, name);
    int status = x == NULL ? CLATTN_STATUS_HOST_OUT_OF_MEMORY
                           : npy_files_random(path, dtype, rank, full + 4 - rank, &seed, x, &err);
    if (!status && widened != NULL) {
        expand(wide_path, widened);
        status = npy_write(wide_path, CLATTN_DTYPE_F32, rank, full + 4 - rank, x, &err);
    }
    if (status)
        printf("setup: writing %s: %s\n", path, err.text);
    free(x);
    return status == CLATTN_STATUS_OK;
}

static int write_random(const char *name, int rank, int b, int h, int n, int d, unsigned long long seed)
{
    return write_random_as(name, NULL, CLATTN_DTYPE_F32, rank, b, h, n, d, seed);
}

/* A .npy file with a header of our choosing (a dtype or rank the tool must refuse); data zero. */
static int write_raw_npy(const char *name, const char *descr, const char *shape, size_t data_bytes)
{
    char header[256], path[ARG_SIZE];
    int len =
        snprintf(header, sizeof header - 64, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    while ((10 + len + 1) % 64 != 0)
        header[len++] = ' ';
    header[len++] = '\n';
    const unsigned char prefix[10] = {
        0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 0xff), (unsigned char)(len >> 8)};
    unsigned char *data = calloc(data_bytes + 1, 1);
    expand(path, name);
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && data != NULL && fwrite(prefix, 1, sizeof prefix, f) == sizeof prefix &&
             fwrite(header, 1, (size_t)len, f) == (size_t)len && fwrite(data, 1, data_bytes, f) == data_bytes;
    if (f != NULL)
        ok = fclose(f) == 0 && ok;
    free(data);
    return ok;
}

/* A valid tensor file cut one byte short. */
static int write_truncated(const char *name, int b, int h, int n, int d)
{
    char path[ARG_SIZE];
    struct stat st;
    expand(path, name);
    return write_random(name, 4, b, h, n, d, 99) && stat(path, &st) == 0 && truncate(path, st.st_size - 1) == 0;
}

/* ----------------------------------------------------------------------------------------- */
/* Running the tool                                                                           */
/* ----------------------------------------------------------------------------------------- */

typedef struct {
    char text[MAX_ARGS][ARG_SIZE]; /* argv[1..]: placeholders already expanded */
    int count;
} arg_list;

static void arg_add(arg_list *a, const char *text)
{
    if (a->count < MAX_ARGS)
        expand(a->text[a->count++], text);
}

static void arg_add_all(arg_list *a, const char *const *texts, size_t count)
{
    for (size_t i = 0; i < count; i++)
        arg_add(a, texts[i]);
}

typedef struct {
    int exited;          /* 1: ended by exit(); 0: by a signal */
    int code;            /* exit status, or the signal number */
    char out[TEXT_SIZE]; /* stdout, cut to TEXT_SIZE - 1 bytes */
    char err[TEXT_SIZE]; /* stderr, likewise */
} run_result;

/* Child side: stdout and stderr into files, then the tool. Only async-signal-safe calls. */
static void exec_tool(char **argv, const char *out_path, const char *err_path)
{
    const int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out >= 0 && err >= 0 && dup2(out, STDOUT_FILENO) >= 0 && dup2(err, STDERR_FILENO) >= 0)
        execv(tool, argv);
    _exit(127);
}

/* Runs `clattn args...`; 0 when the process could not be started or waited for. */
static int run_tool(const arg_list *args, run_result *r)
{
    char *argv[MAX_ARGS + 2], out_path[ARG_SIZE], err_path[ARG_SIZE];
    argv[0] = (char *)tool;
    for (int i = 0; i < args->count; i++)
        argv[i + 1] = (char *)args->text[i];
    argv[args->count + 1] = NULL;
    expand(out_path, "@stdout.txt");
    expand(err_path, "@stderr.txt");
    memset(r, 0, sizeof *r);
    fflush(stdout);
    const pid_t pid = fork();
    if (pid < 0)
        return 0;
    if (pid == 0)
        exec_tool(argv, out_path, err_path);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return 0;
    runs++;
    r->exited = WIFEXITED(status);
    r->code = r->exited ? WEXITSTATUS(status) : WIFSIGNALED(status) ? WTERMSIG(status) : -1;
    signalled += !r->exited;
    read_text(out_path, r->out, sizeof r->out);
    read_text(err_path, r->err, sizeof r->err);
    return 1;
}

/* The first line of a captured stream, for a FAIL message. */
static const char *first_line(char *text)
{
    text[strcspn(text, "\n")] = '\0';
    return text;
}

/* ----------------------------------------------------------------------------------------- */
/* 1. Correctness: default device against the reference path                                  */
/* ----------------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int rank; /* of every tensor: 4 [B,H,N,D], 3 [H,N,D] (B = 1) or 2 [N,D] (B = H = 1) */
    int batch, heads, kv_heads, q_len, kv_len, head_dim, value_dim;
    int extra_len;        /* > 0: Kx [B,Hkv,Nx,D], Vx [B,Hkv,Nx,Dv] through --kx/--vx */
    int global_qkv;       /* Qg, Kg, Vg (shapes of Q, K, V) through --qg/--kg/--vg */
    int lse;              /* also write and compare LSE [B,H,Nq] */
    const char *flags[8]; /* further options; the unused entries are NULL */
} run_case;

static const run_case run_cases[] = {
    {"dense", 4, 2, 4, 2, 65, 65, 32, 16, 0, 0, 0, {0}},
    {"causal", 3, 1, 4, 2, 257, 257, 16, 24, 0, 0, 0, {"--causal"}},
    {"window 7,3", 2, 1, 1, 1, 257, 257, 32, 32, 0, 0, 0, {"--window", "7,3"}},
    {"window 5 dilation 2", 4, 2, 2, 1, 65, 65, 8, 8, 0, 0, 0, {"--window", "5", "--dilation", "2"}},
    {"global 0,32,64", 4, 1, 4, 2, 65, 65, 16, 32, 0, 0, 0, {"--global", "0,32,64"}},
    {"summary-block 16", 3, 1, 2, 2, 65, 65, 16, 16, 0, 0, 0, {"--summary-block", "16"}},
    {"summary-block 10 merge causal",
     4,
     2,
     2,
     1,
     65,
     65,
     16,
     16,
     0,
     0,
     1,
     {"--summary-block", "10", "--summary-tail", "merge", "--causal", "--seq-lens", "65,9"}},
    {"summary-block 10 own causal",
     4,
     2,
     2,
     1,
     65,
     65,
     16,
     16,
     0,
     0,
     1,
     {"--summary-block", "10", "--summary-tail", "own", "--causal", "--seq-lens", "65,9"}},
    {"kx/vx causal", 4, 2, 4, 2, 65, 65, 16, 8, 5, 0, 0, {"--causal"}},
    {"qg/kg/vg global", 4, 1, 2, 1, 65, 65, 16, 16, 0, 1, 0, {"--global", "64,3,17", "--window", "4,4"}},
    {"seq-lens 40,65,0 causal", 4, 3, 2, 1, 65, 65, 16, 16, 0, 0, 1, {"--seq-lens", "40,65,0", "--causal"}},
    {"lse", 2, 1, 1, 1, 257, 257, 64, 32, 0, 0, 1, {0}},
    {"scale 0.3", 3, 1, 2, 1, 65, 65, 32, 32, 0, 0, 0, {"--scale", "0.3"}},
    {"decode causal window 16,0", 4, 2, 4, 2, 1, 257, 64, 32, 0, 0, 1, {"--causal", "--window", "16,0"}},
    {"2-D neighbors", 3, 1, 2, 2, 35, 35, 16, 16, 0, 0, 0, {"--grid", "5,7", "--grid-pattern", "neighborhood=3,3,2"}},
    {"2-D window 4,1", 2, 1, 1, 1, 35, 35, 16, 8, 0, 0, 0, {"--grid", "5,7", "--grid-pattern", "window=4,1"}},
    {"2-D axial-row", 4, 2, 2, 1, 63, 63, 16, 8, 0, 0, 1, {"--grid", "7,9", "--grid-pattern", "axial-row"}},
    {"2-D axial-column", 3, 1, 2, 2, 63, 63, 8, 16, 0, 0, 1, {"--grid", "7,9", "--grid-pattern", "axial-column"}},
    {"2-D criss-cross", 4, 2, 4, 2, 63, 63, 16, 16, 0, 0, 1, {"--grid", "9,7", "--grid-pattern", "criss-cross"}},
    {"2-D neighbors 13,3 dil 3 lse",
     4,
     1,
     2,
     1,
     63,
     63,
     16,
     16,
     0,
     0,
     1,
     {"--grid", "7,9", "--grid-pattern", "neighborhood=13,3,3"}},
};

/* Writes the case's inputs (fresh random data) in `dtype` and puts their flags and the options
 * into args; `widened`, when not NULL, receives the same for float32 files of the rounded values. */
static int write_case_inputs(const run_case *c, clattn_dtype dtype, unsigned long long seed, arg_list *args,
                             arg_list *widened)
{
    const struct {
        const char *flag, *file, *wide;
        int heads, len, dim, present;
    } in[] = {
        {"--q", "@q.npy", "@wq.npy", c->heads, c->q_len, c->head_dim, 1},
        {"--k", "@k.npy", "@wk.npy", c->kv_heads, c->kv_len, c->head_dim, 1},
        {"--v", "@v.npy", "@wv.npy", c->kv_heads, c->kv_len, c->value_dim, 1},
        {"--qg", "@qg.npy", "@wqg.npy", c->heads, c->q_len, c->head_dim, c->global_qkv},
        {"--kg", "@kg.npy", "@wkg.npy", c->kv_heads, c->kv_len, c->head_dim, c->global_qkv},
        {"--vg", "@vg.npy", "@wvg.npy", c->kv_heads, c->kv_len, c->value_dim, c->global_qkv},
        {"--kx", "@kx.npy", "@wkx.npy", c->kv_heads, c->extra_len, c->head_dim, c->extra_len > 0},
        {"--vx", "@vx.npy", "@wvx.npy", c->kv_heads, c->extra_len, c->value_dim, c->extra_len > 0},
    };
    arg_list *lists[2] = {args, widened};
    for (int l = 0; l < 2 && lists[l] != NULL; l++) {
        lists[l]->count = 0;
        arg_add(lists[l], "run");
    }
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        if (!in[i].present)
            continue;
        if (!write_random_as(in[i].file, widened ? in[i].wide : NULL, dtype, c->rank, c->batch, in[i].heads, in[i].len,
                             in[i].dim, seed + i))
            return 0;
        for (int l = 0; l < 2 && lists[l] != NULL; l++) {
            arg_add(lists[l], in[i].flag);
            arg_add(lists[l], l == 0 ? in[i].file : in[i].wide);
        }
    }
    for (int l = 0; l < 2 && lists[l] != NULL; l++)
        for (int i = 0; c->flags[i] != NULL; i++)
            arg_add(lists[l], c->flags[i]);
    return 1;
}

/* 1 when t has shape `want` (rank dims); else explains in why. */
static int has_shape(const npy_tensor *t, int rank, const long long *want, const char *what, char *why)
{
    int same = t->rank == rank;
    for (int i = 0; same && i < rank; i++)
        same = t->shape[i] == want[i];
    if (!same)
        snprintf(why, ARG_SIZE, "%s has rank %d, shape [%lld,%lld,...], want rank %d [%lld,%lld,...]", what, t->rank,
                 t->shape[0], t->rank > 1 ? t->shape[1] : 0, rank, want[0], rank > 1 ? want[1] : 0);
    return same;
}

/* Reads a tensor the tool wrote and checks its shape and storage type. */
static int read_output(const char *file, int rank, const long long *want, clattn_dtype dtype, npy_tensor *t, char *why)
{
    char path[ARG_SIZE];
    tool_error err;
    expand(path, file);
    if (npy_read(path, 1, NPY_MAX_RANK, t, &err)) {
        snprintf(why, ARG_SIZE, "reading the output: %.200s", err.text);
        return 0;
    }
    if (t->dtype != dtype) {
        snprintf(why, ARG_SIZE, "%s is %s, want %s", file, npy_dtype_name(t->dtype), npy_dtype_name(dtype));
        return 0;
    }
    return has_shape(t, rank, want, file, why);
}

/* Runs the case on `device` (NULL: the default) and reads O (Q's rank, last dim Dv, stored in
 * `dtype`) and LSE (float32) from out/o_<tag>.npy and out/l_<tag>.npy. */
static int run_case_on(const run_case *c, const arg_list *base, const char *device, const char *tag, clattn_dtype dtype,
                       npy_tensor *out, npy_tensor *lse, char *why)
{
    const long long full_out[4] = {c->batch, c->heads, c->q_len, c->value_dim};
    const long long full_lse[3] = {c->batch, c->heads, c->q_len};
    char out_file[32], lse_file[32];
    snprintf(out_file, sizeof out_file, "@out/o_%s.npy", tag);
    snprintf(lse_file, sizeof lse_file, "@out/l_%s.npy", tag);
    arg_list args = *base;
    run_result r;
    arg_add(&args, "--out");
    arg_add(&args, out_file);
    if (c->lse) {
        arg_add(&args, "--lse");
        arg_add(&args, lse_file);
    }
    if (device != NULL) {
        arg_add(&args, "--device");
        arg_add(&args, device);
    }
    const char *name = device ? device : "default device";
    if (!run_tool(&args, &r)) {
        snprintf(why, ARG_SIZE, "%s: cannot start %s: %s", name, tool, strerror(errno));
        return 0;
    }
    if (!r.exited || r.code != 0) {
        snprintf(why, ARG_SIZE, "%s: %s %d: %.150s", name, r.exited ? "exit" : "signal", r.code, first_line(r.err));
        return 0;
    }
    if (strstr(r.err, "reference") != NULL) { /* every pattern runs on the device it names */
        snprintf(why, ARG_SIZE, "%s: a note about the reference path: %.150s", name, first_line(r.err));
        return 0;
    }
    return read_output(out_file, c->rank, full_out + 4 - c->rank, dtype, out, why) &&
           (!c->lse || read_output(lse_file, c->rank - 1, full_lse + 4 - c->rank, CLATTN_DTYPE_F32, lse, why));
}

/* Largest |a - b|; inf for a NaN, or an infinity (only -inf, where allowed) not matched exactly. */
static double max_abs_error(const float *a, const float *b, size_t n, int allow_neg_inf)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) {
            if (!allow_neg_inf || a[i] != -INFINITY || b[i] != -INFINITY)
                return INFINITY;
            continue;
        }
        const double e = fabs((double)a[i] - (double)b[i]);
        worst = e > worst ? e : worst;
    }
    return worst;
}

static void check_run_case(const run_case *c, unsigned long long seed)
{
    arg_list base;
    npy_tensor out = {0}, out_ref = {0}, lse = {0}, lse_ref = {0};
    char why[ARG_SIZE] = "writing the inputs failed";
    const clattn_dtype f32 = CLATTN_DTYPE_F32;
    const int ran = write_case_inputs(c, f32, seed, &base, NULL) &&
                    run_case_on(c, &base, NULL, "dev", f32, &out, &lse, why) &&
                    run_case_on(c, &base, "reference", "ref", f32, &out_ref, &lse_ref, why);
    if (ran) {
        const double err_out = max_abs_error(out.data, out_ref.data, out.count, 0);
        const double err_lse = c->lse ? max_abs_error(lse.data, lse_ref.data, lse.count, 1) : 0.0;
        char lse_text[64] = "";
        if (c->lse)
            snprintf(lse_text, sizeof lse_text, ", LSE %.2e", err_lse);
        check(err_out <= TOLERANCE && err_lse <= TOLERANCE,
              "run %-28s rank %d B=%d H=%d/%d Nq=%d Nk=%d D=%d Dv=%d: max err O %.2e%s", c->name, c->rank, c->batch,
              c->heads, c->kv_heads, c->q_len, c->kv_len, c->head_dim, c->value_dim, err_out, lse_text);
    } else {
        check(0, "run %s: %s", c->name, why);
    }
    npy_free(&lse_ref);
    npy_free(&lse);
    npy_free(&out_ref);
    npy_free(&out);
    clear_dir(outdir, 1);
}

/* The cases run again in float16 and bfloat16 storage. */
static const char *const typed_cases[] = {"dense",
                                          "causal",
                                          "window 5 dilation 2",
                                          "seq-lens 40,65,0 causal",
                                          "global 0,32,64",
                                          "kx/vx causal",
                                          "qg/kg/vg global",
                                          "summary-block 10 own causal",
                                          "lse",
                                          "decode causal window 16,0",
                                          "2-D neighbors",
                                          "2-D window 4,1",
                                          "2-D axial-row",
                                          "2-D axial-column",
                                          "2-D criss-cross"};

/* A case in 16-bit storage, on the default device and on the reference path: O must come back in
 * that storage, within SPEC.md's tolerance (half an ulp at the output's magnitude + TOLERANCE) of
 * the float32 reference run on float32 files of the same rounded inputs; LSE (float32) within
 * TOLERANCE of that reference's. */
static void check_typed_case(const run_case *c, clattn_dtype dtype, unsigned long long seed)
{
    arg_list base, wide;
    npy_tensor out = {0}, lse = {0}, ref_out = {0}, ref_lse = {0}, exact = {0}, exact_lse = {0};
    char why[ARG_SIZE] = "writing the inputs failed";
    const char *name = npy_dtype_name(dtype);
    const int ran = write_case_inputs(c, dtype, seed, &base, &wide) &&
                    run_case_on(c, &base, NULL, "dev", dtype, &out, &lse, why) &&
                    run_case_on(c, &base, "reference", "ref", dtype, &ref_out, &ref_lse, why) &&
                    run_case_on(c, &wide, "reference", "exact", CLATTN_DTYPE_F32, &exact, &exact_lse, why);
    if (ran) {
        const double dev = storage_error(dtype, out.data, exact.data, exact.count, 0.5);
        const double ref = storage_error(dtype, ref_out.data, exact.data, exact.count, 0.5);
        const double err_lse = c->lse ? fmax(max_abs_error(lse.data, exact_lse.data, exact_lse.count, 1),
                                             max_abs_error(ref_lse.data, exact_lse.data, exact_lse.count, 1))
                                      : 0.0;
        check(dev <= TOLERANCE && ref <= TOLERANCE && err_lse <= TOLERANCE,
              "run %-8s %-28s O beyond half an ulp: default device %.2e, reference %.2e; LSE %.2e", name, c->name, dev,
              ref, err_lse);
    } else {
        check(0, "run %s %s: %s", name, c->name, why);
    }
    npy_tensor *all[] = {&exact_lse, &exact, &ref_lse, &ref_out, &lse, &out};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        npy_free(all[i]);
    clear_dir(outdir, 1);
}

static void check_typed_cases(void)
{
    for (size_t t = 0; t < sizeof typed_cases / sizeof typed_cases[0]; t++) {
        const run_case *c = NULL;
        for (size_t i = 0; i < sizeof run_cases / sizeof run_cases[0]; i++)
            if (strcmp(run_cases[i].name, typed_cases[t]) == 0)
                c = &run_cases[i];
        if (c == NULL) {
            check(0, "typed case '%s' is not among the run cases", typed_cases[t]);
            continue;
        }
        check_typed_case(c, CLATTN_DTYPE_F16, 7000 + 100 * t);
        check_typed_case(c, CLATTN_DTYPE_BF16, 8000 + 100 * t);
    }
}

/* ----------------------------------------------------------------------------------------- */
/* 2. Exit codes, messages, and nothing written on failure                                    */
/* ----------------------------------------------------------------------------------------- */

/* Inputs of the failure cases: Q [2,2,16,8], K and V [2,1,16,8]. */
static int write_error_inputs(void)
{
    return write_random("@eq.npy", 4, 2, 2, 16, 8, 1) && write_random("@ek.npy", 4, 2, 1, 16, 8, 2) &&
           write_random_as("@eq16.npy", NULL, CLATTN_DTYPE_F16, 4, 2, 2, 16, 8, 1) &&
           write_random_as("@ek16.npy", NULL, CLATTN_DTYPE_F16, 4, 2, 1, 16, 8, 2) &&
           write_random_as("@evb16.npy", NULL, CLATTN_DTYPE_BF16, 4, 2, 1, 16, 8, 3) &&
           write_random("@ev.npy", 4, 2, 1, 16, 8, 3) && write_random("@ek4.npy", 4, 2, 1, 16, 4, 4) &&
           write_truncated("@etrunc.npy", 2, 1, 16, 8) && write_raw_npy("@ef8.npy", "<f8", "(2, 2, 16, 8)", 8 * 512) &&
           write_raw_npy("@erank5.npy", "<f4", "(1, 2, 1, 16, 8)", 4 * 256);
}

#define Q "--q", "@eq.npy"
#define K "--k", "@ek.npy"
#define V "--v", "@ev.npy"
#define OUT "--out", "@out/o.npy", "--lse", "@out/l.npy"

typedef struct {
    const char *what;
    int expect;         /* exit status */
    int on_stdout;      /* the needle is looked for on stdout (else stderr) */
    const char *needle; /* the offending flag or value the message must name */
    const char *args[24];
} command_case;

static const command_case command_cases[] = {
    {"no arguments", 2, 0, "usage", {NULL}},
    {"--help", 0, 1, "usage", {"--help", NULL}},
    {"devices lists the reference path", 0, 1, "reference", {"devices", NULL}},
    {"bench --brief prints the short table",
     0,
     1,
     "GFLOP/s",
     {"bench", "--device", "reference", "--n", "16", "--h", "1", "--repeat", "1", "--warmup", "0", "--brief", NULL}},
    {"bench --save (tune's flag)", 2, 0, "--save", {"bench", "--device", "reference", "--save", NULL}},
    {"bench --dtype bf16 names its storage type",
     0,
     1,
     " bf16 ",
     {"bench", "--device", "reference", "--n", "16", "--h", "1", "--repeat", "1", "--warmup", "0", "--brief", "--dtype",
      "bf16", NULL}},
    {"bench --dtype f16 counts 2-byte elements", /* Q, K, V read and O written: 4 x 16 x 64 x 2 bytes */
     0,
     1,
     "\"bytes\": 8192,",
     {"bench", "--device", "reference", "--n", "16", "--h", "1", "--repeat", "1", "--warmup", "0", "--json", "--dtype",
      "f16", NULL}},
    {"bench --dtype f64", 2, 0, "--dtype 'f64'", {"bench", "--device", "reference", "--dtype", "f64", NULL}},
    {"bench 2-D patterns on a 6x5 grid",
     0,
     1,
     "criss-cross",
     {"bench",    "--device", "reference", "--pattern", "axial,criss-cross,neighborhood,swin",
      "--grid",   "6,5",      "--n",       "30",        "--kernel",
      "3,3",      "--swin",   "4,2",       "--h",       "1",
      "--repeat", "1",        "--warmup",  "0",         "--brief",
      NULL}},
    {"bench --swin 4,4 (shift >= M)", 2, 0, "--swin", {"bench", "--device", "reference", "--swin", "4,4", NULL}},
    {"bench --rounds 0", 2, 0, "--rounds '0'", {"bench", "--device", "reference", "--rounds", "0", NULL}},
    {"tune --rounds 2 (bench's flag)", 2, 0, "--rounds", {"tune", "--device", "reference", "--rounds", "2", NULL}},
    {"tune --save on a 2-D pattern",
     2,
     0,
     "--save keeps",
     {"tune", "--device", "reference", "--pattern", "swin", "--save", NULL}},
    {"missing --q", 2, 0, "--q", {"run", K, V, OUT, NULL}},
    {"unknown option", 2, 0, "--bogus", {"run", Q, K, V, OUT, "--bogus", "1", NULL}},
    {"--window -1", 2, 0, "-1", {"run", Q, K, V, OUT, "--window", "-1", NULL}},
    {"--window abc", 2, 0, "abc", {"run", Q, K, V, OUT, "--window", "abc", NULL}},
    {"--dilation 0", 2, 0, "dilation", {"run", Q, K, V, OUT, "--window", "3", "--dilation", "0", NULL}},
    {"--summary-block 0", 2, 0, "summary", {"run", Q, K, V, OUT, "--summary-block", "0", NULL}},
    {"--summary-tail last",
     2,
     0,
     "last",
     {"run", Q, K, V, OUT, "--summary-block", "3", "--summary-tail", "last", NULL}},
    {"--grid 3,5 (not N = 16)",
     2,
     0,
     "grid",
     {"run", Q, K, V, OUT, "--grid", "3,5", "--grid-pattern", "axial-row", NULL}},
    {"--grid-pattern neighborhood=0,3",
     2,
     0,
     "kernel",
     {"run", Q, K, V, OUT, "--grid", "4,4", "--grid-pattern", "neighborhood=0,3", NULL}},
    {"--grid-pattern window=0",
     2,
     0,
     "window",
     {"run", Q, K, V, OUT, "--grid", "4,4", "--grid-pattern", "window=0", NULL}},
    {"--grid-pattern window=2,2 (shift)",
     2,
     0,
     "shift",
     {"run", Q, K, V, OUT, "--grid", "4,4", "--grid-pattern", "window=2,2", NULL}},
    {"--grid-pattern spiral", 2, 0, "spiral", {"run", Q, K, V, OUT, "--grid", "4,4", "--grid-pattern", "spiral", NULL}},
    {"--global 3,3 (repeated)", 2, 0, "global", {"run", Q, K, V, OUT, "--global", "3,3", NULL}},
    {"--global 999 (out of range)", 2, 0, "999", {"run", Q, K, V, OUT, "--global", "999", NULL}},
    {"--seq-lens with 1 entry for B=2", 2, 0, "seq", {"run", Q, K, V, OUT, "--seq-lens", "16", NULL}},
    {"--seq-lens entry 17 > N=16", 2, 0, "17", {"run", Q, K, V, OUT, "--seq-lens", "16,17", NULL}},
    {"nonexistent input file", 2, 0, "missing.npy", {"run", "--q", "@missing.npy", K, V, OUT, NULL}},
    {"truncated .npy", 2, 0, "etrunc.npy", {"run", Q, "--k", "@etrunc.npy", V, OUT, NULL}},
    {"float64 .npy", 2, 0, "<f8", {"run", "--q", "@ef8.npy", K, V, OUT, NULL}},
    {"float16 q, float32 k and v",
     2,
     0,
     "ek.npy is float32 ('<f4') and ",
     {"run", "--q", "@eq16.npy", K, V, OUT, NULL}},
    {"float16 q and k, bfloat16 v",
     2,
     0,
     "evb16.npy is bfloat16 ('<V2') and ",
     {"run", "--q", "@eq16.npy", "--k", "@ek16.npy", "--v", "@evb16.npy", OUT, NULL}},
    {"rank-5 .npy", 2, 0, "erank5.npy", {"run", Q, K, "--v", "@erank5.npy", OUT, NULL}},
    {"Q/K head-dim mismatch (8 vs 4)", 2, 0, "head dim", {"run", Q, "--k", "@ek4.npy", V, OUT, NULL}},
    {"--qg without --kg/--vg", 2, 0, "--kg", {"run", Q, K, V, OUT, "--global", "1", "--qg", "@eq.npy", NULL}},
    {"--device 99:99 (no such device)", 3, 0, "99:99", {"run", Q, K, V, OUT, "--device", "99:99", NULL}},
    {"--device foo (malformed spec)", 2, 0, "foo", {"run", Q, K, V, OUT, "--device", "foo", NULL}},
};

/* Usage errors: their message, and not the status text they once printed after it. */
static const command_case usage_cases[] = {
    {"usage: --scale nan", 2, 0, "nan", {"run", Q, K, V, OUT, "--scale", "nan", NULL}},
    {"usage: --window 4x", 2, 0, "4x", {"run", Q, K, V, OUT, "--window", "4x", NULL}},
    {"usage: unknown option", 2, 0, "--frob", {"run", Q, K, V, OUT, "--frob", "1", NULL}},
};
#define WRONG_USAGE_TEXT "(a tensor size is zero or negative)"

/* Runs a case; `absent`, when not NULL, is text its output must not hold. */
static void check_command(const command_case *c, const char *absent)
{
    arg_list args = {.count = 0};
    run_result r;
    for (int i = 0; c->args[i] != NULL; i++)
        arg_add(&args, c->args[i]);
    if (!run_tool(&args, &r)) {
        check(0, "%s: cannot start %s: %s", c->what, tool, strerror(errno));
        return;
    }
    char *text = c->on_stdout ? r.out : r.err;
    const int named = strstr(text, c->needle) != NULL;
    const int wrong = absent != NULL && strstr(text, absent) != NULL;
    const int written = clear_dir(outdir, 1);
    const int ok = r.exited && r.code == c->expect && named && !wrong && written == 0;
    check(ok, "%-34s %s %d (want %d), %s %s '%s'%s%s%s%s%s", c->what, r.exited ? "exit" : "SIGNAL", r.code, c->expect,
          c->on_stdout ? "stdout" : "stderr", named ? "names" : "does NOT name", c->needle,
          wrong ? ", but prints " : "", wrong ? absent : "", written ? ", but an output file was written" : "",
          ok ? "" : ": ", ok ? "" : first_line(text));
}

/* Occurrences of needle in text. */
static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* --rounds 3: the sweep runs three times (three progress lines for the point), and the table
 * still has one row per device and point, its samples pooled. */
static void check_bench_rounds(void)
{
    static const char *const args[] = {"bench",    "--device", "reference", "--n", "16",    "--h",      "1",
                                       "--repeat", "2",        "--warmup",  "0",   "--csv", "--rounds", "3"};
    arg_list a = {.count = 0};
    arg_add_all(&a, args, sizeof args / sizeof args[0]);
    run_result r;
    const int ran = run_tool(&a, &r);
    check(ran && r.exited && r.code == 0, "bench --rounds 3 exits 0 (got %d)", r.code);
    check(count_of(r.err, "reference dense N=16:") == 3, "bench --rounds 3 runs the point three times (%d)",
          count_of(r.err, "reference dense N=16:"));
    check(count_of(r.out, "\"reference\",\"dense\"") == 1, "bench --rounds 3 prints one row for the point (%d)",
          count_of(r.out, "\"reference\",\"dense\""));
}

/* Runs the tool with args (n of them) and `--device spec`, the CPU variant forced; returns
 * whether it ran. */
static int run_cpu_variant(const char *const *args, size_t n, const char *spec, run_result *r)
{
    arg_list a = {.count = 0};
    arg_add_all(&a, args, n);
    arg_add(&a, "--device");
    arg_add(&a, spec);
    setenv("CLATTN_VARIANT", "cpu", 1);
    const int ran = run_tool(&a, r);
    unsetenv("CLATTN_VARIANT");
    return ran;
}

/* tune on the CPU variant (forced) for a 2-D pattern: refused, nothing timed, as its 2-D kernels
 * take their blocks from the pattern; skipped without a device. */
static void check_tune_grid(const char *spec)
{
    static const char *const args[] = {"tune", "--pattern", "neighborhood", "--grid", "6,5",      "--kernel", "3,3",
                                       "--h",  "1",         "--repeat",     "1",      "--warmup", "0"};
    if (spec == NULL) {
        printf("skip: tune --pattern neighborhood on the CPU variant: no OpenCL device\n");
        return;
    }
    run_result r;
    const int ran = run_cpu_variant(args, sizeof args / sizeof args[0], spec, &r);
    check(ran && r.exited && r.code == 2 && strstr(r.err, "take their blocks from the pattern") != NULL &&
              strstr(r.out, "best:") == NULL,
          "tune --pattern neighborhood on %s, CPU variant: exit %d (want 2), says why: %s", spec, r.code,
          ran ? first_line(r.err) : "did not start");
}

/* tune on the CPU variant (forced, its 19 candidates) in bfloat16, whose rounding two right plans
 * may split differently: every candidate computes what the library's own plan computes, within the
 * tune's bound, so none is left out and one wins; skipped without a device. */
static void check_tune_right(const char *spec)
{
    static const char *const args[] = {"tune", "--pattern", "causal", "--n",      "100", "--h",      "2", "--d",
                                       "32",   "--dtype",   "bf16",   "--repeat", "1",   "--warmup", "0"};
    if (spec == NULL) {
        printf("skip: tune --dtype bf16 on the CPU variant: no OpenCL device\n");
        return;
    }
    run_result r;
    const int ran = run_cpu_variant(args, sizeof args / sizeof args[0], spec, &r);
    check(ran && r.exited && r.code == 0 && strstr(r.out, "the library's own plan") != NULL &&
              count_of(r.out, "  cpu rows=") == 19 && strstr(r.out, "differs") == NULL &&
              strstr(r.out, "best:") != NULL,
          "tune --dtype bf16 on %s, CPU variant: exit %d (want 0), %d candidates (want 19), %d left out (want 0)%s%s",
          spec, r.code, ran ? count_of(r.out, "  cpu rows=") : 0, ran ? count_of(r.out, "differs") : 0,
          ran && r.code ? ": " : "", ran && r.code ? first_line(r.err) : "");
}

/* ----------------------------------------------------------------------------------------- */

static int make_scratch(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/clattn_test_tool_XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(scratch) == NULL)
        return 0;
    snprintf(outdir, sizeof outdir, "%s/out", scratch);
    return mkdir(outdir, 0700) == 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || access(argv[1], X_OK) != 0) {
        check(0, "usage: test_tool /path/to/clattn (got %s)", argc < 2 ? "no path" : argv[1]);
        return check_exit();
    }
    tool = argv[1];
    if (!make_scratch()) {
        check(0, "cannot create a scratch directory under %s: %s", scratch, strerror(errno));
        return check_exit();
    }
    char specs[1][16];
    const int have_device = harness_devices(specs, 1) > 0;
    if (!have_device)
        printf("note: no OpenCL device: the default device is the reference path, so the correctness "
               "checks compare the reference with itself\n");

    for (size_t i = 0; i < sizeof run_cases / sizeof run_cases[0]; i++)
        check_run_case(&run_cases[i], 1000 * (i + 1));
    check_typed_cases();
    if (write_error_inputs()) {
        for (size_t i = 0; i < sizeof command_cases / sizeof command_cases[0]; i++)
            check_command(&command_cases[i], NULL);
        for (size_t i = 0; i < sizeof usage_cases / sizeof usage_cases[0]; i++)
            check_command(&usage_cases[i], WRONG_USAGE_TEXT);
        check_bench_rounds();
        check_tune_grid(have_device ? specs[0] : NULL);
        check_tune_right(have_device ? specs[0] : NULL);
    } else {
        check(0, "writing the inputs of the failure cases");
    }
    check(signalled == 0, "no run ended by a signal (%d runs, %d signalled)", runs, signalled);

    clear_dir(outdir, 1);
    rmdir(outdir);
    clear_dir(scratch, 1);
    if (rmdir(scratch) != 0)
        check(0, "removing %s: %s", scratch, strerror(errno));
    return check_exit();
}

/* A program outside the clattn tree, built against an installed clattn (tests/install/run.sh):
 * it checks the header's version against the library's and runs one problem on the default OpenCL
 * device against the reference path. Exit 0 pass, 1 fail, 77 no OpenCL device (skipped). */
#include <clattn.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, H = 4, HKV = 2, N = 37, D = 24 };

/* Runs the problem on the context of `device` into out [B,H,N,D]; returns a status. */
static int run(const char *device, const clattn_problem *problem, const clattn_host_tensors *in, float *out,
               int *is_reference)
{
    clattn_context *ctx = NULL;
    clattn_plan *plan = NULL;
    int status = clattn_context_create(&(clattn_context_desc){.device = device}, &ctx);
    if (status == CLATTN_STATUS_OK) {
        *is_reference = clattn_context_is_reference(ctx);
        status = clattn_plan_create(ctx, problem, &plan);
    }
    clattn_host_tensors t = *in;
    t.out = (clattn_host_tensor){out, sizeof(float) * B * H * N * D};
    if (status == CLATTN_STATUS_OK)
        status = clattn_plan_run_host(plan, &t);
    if (status != CLATTN_STATUS_OK)
        fprintf(stderr, "consumer: %s: %s (%s)\n", device, clattn_status_name(status), clattn_context_message(ctx));
    clattn_plan_free(plan);
    clattn_context_free(ctx);
    return status;
}

int main(void)
{
    if (strcmp(clattn_version(), CLATTN_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: library %s, header %s\n", clattn_version(), CLATTN_VERSION_STRING);
        return 1;
    }
    static float q[B * H * N * D], k[B * HKV * N * D], v[B * HKV * N * D], out[B * H * N * D], ref[B * H * N * D];
    unsigned state = 12345u;
    float *tensors[] = {q, k, v};
    const size_t counts[] = {B * H * N * D, B * HKV * N * D, B * HKV * N * D};
    for (int t = 0; t < 3; t++)
        for (size_t i = 0; i < counts[t]; i++) {
            state = state * 1664525u + 1013904223u;
            tensors[t][i] = (float)(state >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
        }
    static const int globals[] = {3, 20};
    static const int seq_lens[] = {N, 30};
    const clattn_problem problem = {.batch = B,
                                    .heads = H,
                                    .kv_heads = HKV,
                                    .q_len = N,
                                    .head_dim = D,
                                    .causal = 1,
                                    .window = 1,
                                    .window_left = 5,
                                    .window_right = 2,
                                    .global_idx = globals,
                                    .num_global = 2};
    const clattn_host_tensors in = {.q = {q, sizeof q}, .k = {k, sizeof k}, .v = {v, sizeof v}, .seq_lens = seq_lens};
    int is_reference = 0;
    if (run("", &problem, &in, out, &is_reference) != CLATTN_STATUS_OK)
        return 1;
    if (is_reference) {
        printf("SKIP consumer: no OpenCL device (the default context is the reference path)\n");
        return 77;
    }
    if (run("reference", &problem, &in, ref, &is_reference) != CLATTN_STATUS_OK)
        return 1;
    double worst = 0.0;
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        worst = fmax(worst, fabs((double)out[i] - (double)ref[i]));
    printf("consumer: clattn %s, max |device - reference| = %.3g\n", clattn_version(), worst);
    return worst <= 1e-4 ? 0 : 1;
}

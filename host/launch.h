/* What the launches of a run share (host/launch.c, host/launch_grid.c): a chain of commands on
 * one queue, each waiting on the previous one's event, kernel arguments from a list, and the
 * packing of keys into panels for the CPU variant. */
#ifndef CLATTN_LAUNCH_H
#define CLATTN_LAUNCH_H

#include "plan.h"

/* Events chain the commands of one run, so that out-of-order queues are safe too. */
typedef struct {
    cl_command_queue queue;
    cl_uint num_wait;
    const cl_event *wait;
    cl_event last;
} command_chain;

/* Enqueues kernel after the chain's last command; it becomes the last. */
cl_int clattn__chain_launch(command_chain *chain, cl_kernel kernel, cl_uint dims, const size_t *global,
                            const size_t *local);

/* One kernel argument: (size, pointer); ARG(x) makes one of a variable. */
typedef struct {
    size_t size;
    const void *value;
} kernel_arg;

#define ARG(x)                                                                                                         \
    {                                                                                                                  \
        sizeof(x), &(x)                                                                                                \
    }

/* Sets the kernel's arguments in order. */
cl_int clattn__set_args(cl_kernel kernel, const kernel_arg *args, cl_uint count);

/* The passes of a 2-D grid pattern's run (host/launch_grid.c). */
cl_int clattn__grid_enqueue(clattn_plan *plan, command_chain *chain, const clattn_buffers *bufs);

#endif

/* The one walk over OpenCL platforms and devices: the advanced header's device list and the
 * context's device selection both go through it. */
#ifndef CLATTN_DEVICES_H
#define CLATTN_DEVICES_H

#include "clattn_advanced.h"
#include "error.h"

/* Finds the device a spec names: "gpu" or "cpu" (the first of that type over all platforms) or
 * "P:D" (platform, device index). INVALID_DEVICE_SPEC or NO_DEVICE, with a message, otherwise. */
int clattn__find_device(const char *spec, cl_device_id *out, clattn__error *err);

#endif

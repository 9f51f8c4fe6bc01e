/* Walks every device of every OpenCL platform in "P:D" order, for the device list and for
 * device selection by spec. */
#include "devices.h"

#include <stdio.h>
#include <string.h>

#define MAX_PLATFORMS 16
#define MAX_DEVICES_PER_PLATFORM 64
#define PLATFORM_NOT_FOUND (-1001) /* CL_PLATFORM_NOT_FOUND_KHR: the ICD loader found none */

/* Called for each device until it returns nonzero. */
typedef int (*device_visit)(void *user, cl_uint platform, cl_uint index, cl_device_id id);

/* CL_SUCCESS after visiting every device (none when no platform is installed), or the code of
 * a failed clGetPlatformIDs. A platform whose devices cannot be listed has none. */
static cl_int each_device(device_visit visit, void *user)
{
    cl_platform_id platforms[MAX_PLATFORMS];
    cl_uint nplat = 0;
    const cl_int rc = clGetPlatformIDs(MAX_PLATFORMS, platforms, &nplat);
    if (rc == PLATFORM_NOT_FOUND)
        return CL_SUCCESS;
    if (rc != CL_SUCCESS)
        return rc;
    for (cl_uint p = 0; p < nplat && p < MAX_PLATFORMS; p++) {
        cl_device_id devices[MAX_DEVICES_PER_PLATFORM];
        cl_uint ndev = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES_PER_PLATFORM, devices, &ndev) != CL_SUCCESS)
            continue;
        for (cl_uint d = 0; d < ndev && d < MAX_DEVICES_PER_PLATFORM; d++)
            if (visit(user, p, d, devices[d]))
                return CL_SUCCESS;
    }
    return CL_SUCCESS;
}

typedef struct {
    clattn_device_info *out;
    int max, count;
} device_list;

static int list_one(void *user, cl_uint platform, cl_uint index, cl_device_id id)
{
    device_list *list = user;
    if (list->count < list->max) {
        clattn_device_info *info = &list->out[list->count];
        memset(info, 0, sizeof *info);
        snprintf(info->spec, sizeof info->spec, "%u:%u", platform, index);
        info->id = id;
        if (clGetDeviceInfo(id, CL_DEVICE_NAME, sizeof info->name, info->name, NULL) != CL_SUCCESS)
            snprintf(info->name, sizeof info->name, "(unnamed)");
        info->name[sizeof info->name - 1] = '\0';
        if (clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof info->type, &info->type, NULL) != CL_SUCCESS)
            info->type = 0;
    }
    list->count++;
    return 0;
}

int clattn_device_list(clattn_device_info *out, int max, int *count)
{
    if (count == NULL || (out == NULL && max > 0))
        return CLATTN_STATUS_NULL_ARGUMENT;
    device_list list = {out, max > 0 ? max : 0, 0};
    const cl_int rc = each_device(list_one, &list);
    *count = list.count;
    return rc;
}

/* What a spec asks for: a device type, or a platform and device index. */
typedef struct {
    cl_device_type type; /* 0: by index */
    int platform, index;
    cl_device_id found;
} device_wanted;

static int match_one(void *user, cl_uint platform, cl_uint index, cl_device_id id)
{
    device_wanted *want = user;
    int match = (int)platform == want->platform && (int)index == want->index;
    if (want->type != 0) {
        cl_device_type type = 0;
        match = clGetDeviceInfo(id, CL_DEVICE_TYPE, sizeof type, &type, NULL) == CL_SUCCESS && (type & want->type);
    }
    if (match)
        want->found = id;
    return match;
}

int clattn__find_device(const char *spec, cl_device_id *out, clattn__error *err)
{
    device_wanted want = {0, -1, -1, NULL};
    char tail;
    if (strcmp(spec, "gpu") == 0)
        want.type = CL_DEVICE_TYPE_GPU;
    else if (strcmp(spec, "cpu") == 0)
        want.type = CL_DEVICE_TYPE_CPU;
    else if (sscanf(spec, "%d:%d%c", &want.platform, &want.index, &tail) != 2 || want.platform < 0 || want.index < 0)
        return clattn__fail(err, CLATTN_STATUS_INVALID_DEVICE_SPEC,
                            "device '%s': expected cpu, gpu, reference or P:D (platform:device index)", spec);
    cl_uint nplat = 0;
    const cl_int rc = clGetPlatformIDs(0, NULL, &nplat);
    if (rc == PLATFORM_NOT_FOUND || (rc == CL_SUCCESS && nplat == 0))
        return clattn__fail(err, CLATTN_STATUS_NO_DEVICE, "device '%s': no OpenCL platform is installed", spec);
    if (rc != CL_SUCCESS)
        return clattn__fail(err, rc, "clGetPlatformIDs failed: %s", clattn__cl_error_name(rc));
    const cl_int walk = each_device(match_one, &want);
    if (walk != CL_SUCCESS)
        return clattn__fail(err, walk, "clGetPlatformIDs failed: %s", clattn__cl_error_name(walk));
    if (want.found == NULL)
        return clattn__fail(err, CLATTN_STATUS_NO_DEVICE, "device '%s': no such OpenCL device", spec);
    *out = want.found;
    return CLATTN_STATUS_OK;
}

/* Files in the context's cache directory: hashed keys, whole-file reads, and writes to a
 * temporary file renamed into place (a crash or a concurrent process never leaves half a file). */
#define _POSIX_C_SOURCE 200809L /* open, fstat, fchmod, mkstemp, fdopen, mkdir, strdup */

#include "cache_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t clattn__hash_text(uint64_t h, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull;
}

uint64_t clattn__hash_device(uint64_t h, const clattn__device_caps *caps)
{
    h = clattn__hash_text(h, caps->name);
    h = clattn__hash_text(h, caps->vendor);
    return clattn__hash_text(h, caps->driver);
}

unsigned char *clattn__read_file(const char *path, size_t max_size, size_t *size, int *absent)
{
    *size = 0;
    errno = 0;
    /* Non-blocking, and only a regular file: a FIFO planted at the path must not hang the caller. */
    const int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (absent != NULL)
        *absent = fd < 0 && errno == ENOENT;
    struct stat st;
    FILE *f = NULL;
    if (fd >= 0 && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (f = fdopen(fd, "rb")) == NULL))
        close(fd);
    if (f == NULL)
        return NULL;
    unsigned char *data = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && (unsigned long)n <= max_size &&
        fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)n + 1)) != NULL) {
        if (fread(data, 1, (size_t)n, f) == (size_t)n) {
            data[n] = '\0';
            *size = (size_t)n;
        } else {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    return data;
}

/* Creates the directories above the file at path that do not exist yet (mode 0755 less the
 * umask, as mkdir -p); returns 0 when every one of them exists afterwards. */
static int make_parents(const char *path)
{
    char *dir = strdup(path);
    int ok = dir != NULL;
    for (char *p = dir != NULL ? dir + 1 : NULL; ok && *p != '\0'; p++)
        if (*p == '/') {
            *p = '\0';
            ok = mkdir(dir, 0755) == 0 || errno == EEXIST;
            *p = '/';
        }
    free(dir);
    return ok ? 0 : -1;
}

int clattn__write_file(const char *path, const void *data, size_t size)
{
    /* A fresh temporary file of our own (mkstemp: unique per call, created exclusively, so two
     * writers never share one and a name planted beforehand is never followed). A cache
     * directory that does not exist yet is created, the first time something is written there. */
    const size_t tmp_size = strlen(path) + 8;
    char *tmp = malloc(tmp_size);
    if (tmp == NULL)
        return -1;
    snprintf(tmp, tmp_size, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0 && errno == ENOENT && make_parents(path) == 0) {
        snprintf(tmp, tmp_size, "%s.XXXXXX", path);
        fd = mkstemp(tmp);
    }
    /* mkstemp makes the file private (0600); a cache directory may be shared, as with fopen. */
    FILE *f = fd >= 0 && fchmod(fd, 0644) == 0 ? fdopen(fd, "wb") : NULL;
    if (fd >= 0 && f == NULL)
        close(fd);
    int ok = f != NULL && fwrite(data, 1, size, f) == size;
    if (f != NULL)
        ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, path) == 0;
    if (!ok && fd >= 0)
        remove(tmp);
    free(tmp);
    return ok ? 0 : -1;
}

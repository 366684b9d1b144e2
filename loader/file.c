/* loader/file.c — bounded file access with POSIX calls (no stdio buffers). */
#include "loader/loader.h"
#include "common/status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

kvgpt_status lf_join(char *out, size_t cap, const char *dir, const char *name, kvgpt_error *err)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return kv_fail(err, KVGPT_ERR_ARG, "%s/%s: path too long", dir, name);
    return KVGPT_OK;
}

int lf_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

kvgpt_status lf_size(const char *path, uint64_t *size, kvgpt_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0) return kv_fail(err, KVGPT_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return kv_fail(err, KVGPT_ERR_IO, "%s: not a regular file", path);
    *size = (uint64_t)st.st_size;
    return KVGPT_OK;
}

kvgpt_status lf_open(lf_file *f, const char *path, kvgpt_error *err)
{
    f->fd = -1;
    int n = snprintf(f->path, sizeof f->path, "%s", path);
    if (n < 0 || (size_t)n >= sizeof f->path) return kv_fail(err, KVGPT_ERR_ARG, "%s: path too long", path);
    kvgpt_status s = lf_size(path, &f->size, err);
    if (s) return s;
    f->fd = open(path, O_RDONLY);
    if (f->fd < 0) return kv_fail(err, KVGPT_ERR_IO, "%s: %s", path, strerror(errno));
    return KVGPT_OK;
}

kvgpt_status lf_read(lf_file *f, uint64_t off, void *buf, size_t n, kvgpt_error *err)
{
    if (off > f->size || n > f->size - off)
        return kv_fail(err, KVGPT_ERR_IO, "%s: truncated: wants bytes %llu..%llu of a %llu-byte file", f->path,
                       (unsigned long long)off, (unsigned long long)(off + n), (unsigned long long)f->size);
    unsigned char *p = buf;
    while (n) {
        ssize_t got = pread(f->fd, p, n > (1u << 30) ? (1u << 30) : n, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0)
            return kv_fail(err, KVGPT_ERR_IO, "%s: read failed at byte %llu: %s", f->path,
                           (unsigned long long)off, got < 0 ? strerror(errno) : "unexpected end of file");
        p += got;
        off += (uint64_t)got;
        n -= (size_t)got;
    }
    return KVGPT_OK;
}

void lf_close(lf_file *f)
{
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
}

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
    /* "" would make "/name": a file at the root, never what was meant. */
    if (!dir || !*dir) return kv_fail(err, KVGPT_ERR_ARG, "no folder given for %s (an empty name)", name);
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return kv_fail(err, KVGPT_ERR_ARG, "%s/%s: path too long", dir, name);
    return KVGPT_OK;
}

int lf_exists(const char *path)
{
    /* Whatever it is: a folder, FIFO or device where a file belongs is
     * reported by lf_open / lf_size, not taken for a missing file. */
    struct stat st;
    return path && *path && stat(path, &st) == 0;
}

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISSOCK(m) ? "a socket" : "not a file";
}

kvgpt_status lf_size(const char *path, uint64_t *size, kvgpt_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0) return kv_fail(err, KVGPT_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return kv_fail(err, KVGPT_ERR_IO, "%s: not a regular file (%s)", path, kind_of(st.st_mode));
    *size = (uint64_t)st.st_size;
    return KVGPT_OK;
}

kvgpt_status lf_open(lf_file *f, const char *path, kvgpt_error *err)
{
    f->fd = -1;
    f->size = 0;
    f->n_reads = f->bytes_read = 0;
    f->path = path ? path : "";
    if (!path || !*path) return kv_fail(err, KVGPT_ERR_ARG, "an empty file name");
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; fstat on what was
     * opened (not a stat before) decides, so nothing can be swapped in between. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return kv_fail(err, KVGPT_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return kv_fail(err, KVGPT_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return kv_fail(err, KVGPT_ERR_IO, "%s: not a regular file (%s)", path, kind_of(st.st_mode));
    }
    f->fd = fd;
    f->size = (uint64_t)st.st_size;
    return KVGPT_OK;
}

kvgpt_status lf_read(lf_file *f, uint64_t off, void *buf, size_t n, kvgpt_error *err)
{
    if (off > f->size || n > f->size - off)
        return kv_fail(err, KVGPT_ERR_IO, "%s: truncated: wants bytes %llu..%llu of a %llu-byte file", f->path,
                       (unsigned long long)off, (unsigned long long)(off + n), (unsigned long long)f->size);
    unsigned char *p = buf;
    f->n_reads++;
    f->bytes_read += n;
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

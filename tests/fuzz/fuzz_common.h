/* tests/fuzz/fuzz_common.h — what the libFuzzer targets share: one private
 * temporary folder per process (the readers take paths, so each input is
 * written to a file there and the name reused), and a loud invariant check.
 * Header-only: each target is built from one .c file plus library sources. */
#ifndef KVGPT_FUZZ_COMMON_H
#define KVGPT_FUZZ_COMMON_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvgpt.h"

/* The process's temporary folder, made on first use and removed at exit. */
static char fz_tmp[256];
static char fz_made[8][512];
static int fz_n_made;

static inline void fz_cleanup(void)
{
    const char *keep = getenv("KVGPT_FUZZ_KEEP");   /* to look at what a target wrote */
    if (keep && *keep) {
        fprintf(stderr, "kvgpt fuzz: kept %s\n", fz_tmp);
        return;
    }
    for (int i = 0; i < fz_n_made; i++) unlink(fz_made[i]);
    for (int i = 0; i < fz_n_made; i++) {   /* sub-folders a target made (emptied above) */
        char *slash = strrchr(fz_made[i], '/');
        if (slash && (size_t)(slash - fz_made[i]) > strlen(fz_tmp)) {
            *slash = 0;
            rmdir(fz_made[i]);
        }
    }
    if (fz_tmp[0]) rmdir(fz_tmp);
}

static inline const char *fz_dir(void)
{
    if (!fz_tmp[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fz_tmp, sizeof fz_tmp, "%s/kvgpt_fuzz_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fz_tmp)) {
            perror("kvgpt fuzz: mkdtemp");
            abort();
        }
        atexit(fz_cleanup);
    }
    return fz_tmp;
}

/* fz_dir()/name, remembered for cleanup; the same name gives the same pointer. */
static inline const char *fz_path(const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", fz_dir(), name);
    for (int i = 0; i < fz_n_made; i++)
        if (strcmp(fz_made[i], p) == 0) return fz_made[i];
    if (fz_n_made == 8) abort();
    memcpy(fz_made[fz_n_made], p, sizeof p);
    return fz_made[fz_n_made++];
}

/* Replaces the file's content with d[0..n). The file stays open and is
 * rewritten in place, then cut to length: truncating to 0 and closing makes
 * ext4 flush the file each time (auto_da_alloc), a 10x slowdown. */
static inline void fz_write(const char *path, const void *d, size_t n)
{
    static int fds[8];
    static const char *paths[8];
    int k = 0, fd;
    while (k < 8 && paths[k] && paths[k] != path) k++;
    if (k == 8) abort();
    if (!paths[k]) {
        fds[k] = open(path, O_RDWR | O_CREAT, 0600);
        paths[k] = path;
    }
    fd = fds[k];
    if (fd < 0) {
        perror(path);
        abort();
    }
    const char *p = d;
    off_t off = 0;
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w <= 0) {
            perror(path);
            abort();
        }
        p += w;
        off += w;
        n -= (size_t)w;
    }
    if (ftruncate(fd, off) != 0) {
        perror(path);
        abort();
    }
}

/* Where findings are reported: stderr, unless a target silenced it. */
static FILE *fz_report;

/* A broken invariant is a finding: say which and crash so libFuzzer keeps the input. */
#define FZ_CHECK(cond, ...)                                                            \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            FILE *out_ = fz_report ? fz_report : stderr;                               \
            fprintf(out_, "kvgpt fuzz: %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
            fprintf(out_, __VA_ARGS__);                                                \
            fputc('\n', out_);                                                         \
            fflush(out_);                                                              \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* Every failure must come with its status recorded and a message. */
static inline void fz_check_failure(kvgpt_status s, const kvgpt_error *err)
{
    FZ_CHECK(s > KVGPT_OK && s < KVGPT_STATUS_COUNT, "status %d out of range", (int)s);
    FZ_CHECK(err->status == s, "err.status %d, returned %d", (int)err->status, (int)s);
    FZ_CHECK(err->msg[0] != 0, "failure %d without a message", (int)s);
    FZ_CHECK(memchr(err->msg, 0, sizeof err->msg) != NULL, "message not terminated");
}

#endif

/* tests/support/fixtures.c — fixture lookup and small file helpers for tests. */
#define _XOPEN_SOURCE 700
#include "tests/support/fixtures.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *tf_dir(void)
{
    static int noted = 0;
    const char *d = getenv("KVGPT_FIXTURES");
    if (!d || !*d) d = "../shared/fixtures";
    struct stat st;
    if (stat(d, &st) == 0 && S_ISDIR(st.st_mode)) return d;
    if (!noted) fprintf(stderr, "fixtures not found at %s (set KVGPT_FIXTURES): fixture tests are skipped\n", d);
    noted = 1;
    return NULL;
}

const char *tf_path(const char *rel)
{
    static char buf[8][4096];
    static int next = 0;
    const char *d = tf_dir();
    if (!d) return NULL;
    char *b = buf[next++ % 8];
    snprintf(b, 4096, "%s/%s", d, rel);
    return b;
}

char *tf_read_file(const char *path, size_t *len)
{
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        if (len) *len = (size_t)n;
    }
    return b;
}

float *tf_read_f32(const char *path, size_t offset, size_t count)
{
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) return NULL;
    float *v = malloc(count * sizeof(float));
    if (v && (fseek(f, (long)offset, SEEK_SET) != 0 || fread(v, sizeof(float), count, f) != count)) {
        free(v);
        v = NULL;
    }
    fclose(f);
    return v;
}

int tf_tmpdir(char *out, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(out, cap, "%s/kvgpt-test-XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(out) ? 0 : -1;
}

int tf_write(const char *dir, const char *name, const void *data, size_t len)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    int bad = fwrite(data, 1, len, f) != len;
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

int tf_copy_dir(const char *from, const char *to)
{
    DIR *d = opendir(from);
    if (!d) return -1;
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", from, e->d_name);
        size_t len;
        char *b = tf_read_file(p, &len);
        if (!b) continue;   /* sub-folders and unreadable entries */
        rc = tf_write(to, e->d_name, b, len);
        free(b);
    }
    closedir(d);
    return rc;
}

void tf_rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

kvgpt_status tf_plan_gpt2(const kvgpt_options *o, kvgpt_plan *p, kvgpt_error *err)
{
    kvgpt_config c;
    kvgpt_options d;
    kvgpt_shape_config(KVGPT_SHAPE_GPT2, &c);
    kvgpt_options_default(&d);
    return kvgpt_plan_config(&c, o ? o : &d, p, err);
}

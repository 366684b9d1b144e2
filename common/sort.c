/* common/sort.c — the allocation-free heapsort every reader and the sampler use. */
#include "common/sort.h"

#include <string.h>

static void swap(unsigned char *a, unsigned char *b, size_t size)
{
    unsigned char t[256];
    memcpy(t, a, size);
    memcpy(a, b, size);
    memcpy(b, t, size);
}

static void sift(unsigned char *a, size_t i, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    for (;;) {
        size_t m = i, l = 2 * i + 1, r = l + 1;
        if (l < n && cmp(a + l * size, a + m * size) > 0) m = l;
        if (r < n && cmp(a + r * size, a + m * size) > 0) m = r;
        if (m == i) return;
        swap(a + i * size, a + m * size, size);
        i = m;
    }
}

void kv_heapsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    unsigned char *a = base;
    for (size_t i = n / 2; i-- > 0;) sift(a, i, n, size, cmp);
    for (size_t i = n; i-- > 1;) {
        swap(a, a + i * size, size);
        sift(a, 0, i, size, cmp);
    }
}

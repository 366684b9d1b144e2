/* common/status.h — failing with a status and a message, and overflow-checked
 * size arithmetic: the two things every folder of kvgpt needs. */
#ifndef KVGPT_STATUS_H
#define KVGPT_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"

#if defined(__GNUC__)
#define KV_PRINTF(a, b) __attribute__((format(printf, a, b)))
/* Keeps a function's stack frame apart from its caller's: the stack a host
 * must give is the deepest path, not the sum of everything inlined. */
#define KV_NOINLINE __attribute__((noinline))
#else
#define KV_PRINTF(a, b)
#define KV_NOINLINE
#endif

/* Records s and the formatted message in err (which may be NULL); returns s. */
kvgpt_status kv_fail(kvgpt_error *err, kvgpt_status s, const char *fmt, ...) KV_PRINTF(3, 4);

/* *out = a * b (or a + b); 0 on overflow, leaving *out untouched. */
static inline int kv_mul(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}
static inline int kv_add(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}
/* Rounds up to a multiple of align (a power of two); 0 on overflow. */
static inline int kv_align(size_t a, size_t align, size_t *out)
{
    if (a > SIZE_MAX - (align - 1)) return 0;
    *out = (a + align - 1) & ~(align - 1);
    return 1;
}

#endif

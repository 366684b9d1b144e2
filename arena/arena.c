/* arena/arena.c — taking the one block a plan asks for, and slicing it.
 *
 * The block the library takes itself is an anonymous mapping aligned to 2
 * MiB and marked for transparent huge pages: opening GPT-2 small writes
 * 600 MB, and on 4 KiB pages that is 150,000 page faults — most of the
 * time open took. The mapping is exactly the plan's total, rounded up to
 * whole pages. (A host that gives its own memory may map it the same way:
 * see kvgpt_open in kvgpt.h.) */
#define _DEFAULT_SOURCE   /* MAP_ANONYMOUS and MADV_HUGEPAGE beside POSIX */
#include "arena/arena.h"
#include "common/status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif

#define ARENA_HUGE ((size_t)2 << 20)

/* Bytes of the mapping for n bytes: whole pages. 0 on overflow. */
static size_t map_bytes(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), out;
    if (page == 0 || (page & (page - 1))) page = 4096;
    return kv_align(n ? n : 1, page, &out) ? out : 0;
}

/* An anonymous mapping of n bytes and 2 MiB more, *span long; its 2
 * MiB-aligned start is the arena (the slack around it is never touched, so
 * it costs address space, not memory). NULL when refused. */
static void *map_aligned(size_t n, size_t *span)
{
    if (!kv_add(n, ARENA_HUGE, span)) return NULL;
    void *raw = mmap(NULL, *span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    unsigned char *base = (unsigned char *)(((uintptr_t)raw + ARENA_HUGE - 1) & ~(uintptr_t)(ARENA_HUGE - 1));
#if defined(MADV_HUGEPAGE)
    (void)madvise(base, n, MADV_HUGEPAGE);   /* a hint: without THP it is ordinary memory */
#endif
    return raw;
}

kvgpt_status arena_open(arena *a, const kvgpt_plan *p, void *mem, size_t mem_bytes, kvgpt_error *err)
{
    memset(a, 0, sizeof *a);
    size_t need = p->total[KVGPT_SPACE_HOST];
    if (!arena_plan_ok(p)) return kv_fail(err, KVGPT_ERR_NOMEM, "memory plan overflows size_t");
    if (p->limit && need > p->limit)
        return kv_fail(err, KVGPT_ERR_NOMEM, "arena limit: Requested %zu, available %zu, missing %zu bytes",
                       need, p->limit, need - p->limit);
    if (mem) {
        /* The documented size, whatever mem's alignment: a host that passes a
         * byte less must fail every time, not only when its pointer is unlucky. */
        size_t want = kvgpt_plan_host_bytes(p);
        if (mem_bytes < want)
            return kv_fail(err, KVGPT_ERR_NOMEM, "caller's memory: Requested %zu, available %zu, missing %zu bytes",
                           want, mem_bytes, want - mem_bytes);
        uintptr_t base = ((uintptr_t)mem + ARENA_ALIGN - 1) & ~(uintptr_t)(ARENA_ALIGN - 1);
        a->base = (unsigned char *)base;
    } else {
        size_t alloc = map_bytes(need);
        if (!alloc) return kv_fail(err, KVGPT_ERR_NOMEM, "arena size overflows");
        a->owned = map_aligned(alloc, &a->owned_bytes);
        if (!a->owned)
            return kv_fail(err, KVGPT_ERR_NOMEM, "the system refused the arena: Requested %zu bytes", alloc);
        a->base = (unsigned char *)(((uintptr_t)a->owned + ARENA_HUGE - 1) & ~(uintptr_t)(ARENA_HUGE - 1));
    }
    a->size = need;
    return KVGPT_OK;
}

void arena_close(arena *a)
{
    if (a->owned) munmap(a->owned, a->owned_bytes);
    memset(a, 0, sizeof *a);
}

void *arena_region(const arena *a, const kvgpt_plan *p, int i)
{
    if (i < 0 || i >= p->n_regions) return NULL;
    return a->base + p->regions[i].offset;
}

/* arena/arena.c — taking the one block a plan asks for, and slicing it. */
#include "arena/arena.h"
#include "common/status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
        size_t alloc;
        if (!kv_align(need ? need : ARENA_ALIGN, ARENA_ALIGN, &alloc))
            return kv_fail(err, KVGPT_ERR_NOMEM, "arena size overflows");
        void *blk = NULL;
        if (posix_memalign(&blk, ARENA_ALIGN, alloc) != 0) blk = NULL;
        a->owned = blk;
        if (!a->owned)
            return kv_fail(err, KVGPT_ERR_NOMEM, "the system refused the arena: Requested %zu bytes", alloc);
        a->base = a->owned;
    }
    a->size = need;
    return KVGPT_OK;
}

void arena_close(arena *a)
{
    free(a->owned);
    memset(a, 0, sizeof *a);
}

void *arena_region(const arena *a, const kvgpt_plan *p, int i)
{
    if (i < 0 || i >= p->n_regions) return NULL;
    return a->base + p->regions[i].offset;
}

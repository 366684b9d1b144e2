/* arena/arena.h — the memory plan and the one arena it is carved from.
 *
 * Plan first: every region is added by id with its exact byte count (what
 * its shape says, plus what the backend's layout adds) and gets a
 * 64-byte-aligned offset in its space (host or device). Then one block
 * of the planned total is taken (or the caller's memory used), each region is
 * base + offset, and the arena is frozen: nothing is ever taken after open.
 */
#ifndef KVGPT_ARENA_H
#define KVGPT_ARENA_H

#include <stddef.h>
#include "kvgpt.h"

#define ARENA_ALIGN 64

void arena_plan_init(kvgpt_plan *p);
/* Adds region id: `bytes` are exactly the shape's, `layout` what the
 * backend adds; returns its index, or -1 when the plan is full, the id is
 * already there, or a size overflows (the plan is then marked broken:
 * arena_plan_ok() is 0). shape is printed into the region's shape field. */
int arena_plan_add(kvgpt_plan *p, kvgpt_region_id id, const char *name, kvgpt_region_kind kind,
                   kvgpt_space space, const char *type, size_t bytes, size_t layout, const char *shape_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 9, 10)))
#endif
    ;
int arena_plan_ok(const kvgpt_plan *p);
/* "f32" | "f16" | "bf16" for a dtype. */
const char *arena_dtype_name(kvgpt_dtype dt);
/* The index of region id, or -1. */
int arena_plan_find(const kvgpt_plan *p, kvgpt_region_id id);

typedef struct {
    unsigned char *base;     /* 64-byte aligned */
    size_t size;             /* the plan's total for this space */
    void *owned;             /* the mapping the arena made itself (NULL: the caller's memory) */
    size_t owned_bytes;      /* its length: the plan's total in whole pages, and 2 MiB of alignment slack */
} arena;

/* Takes the host arena for a plan: from mem (any alignment, mem_bytes long)
 * or, with mem NULL, one anonymous mapping (2 MiB aligned, huge pages asked for). KVGPT_ERR_NOMEM with "Requested N,
 * available M, missing K" when it does not fit or the system refuses. */
kvgpt_status arena_open(arena *a, const kvgpt_plan *p, void *mem, size_t mem_bytes, kvgpt_error *err);
void arena_close(arena *a);
/* Base of region i of the plan in this arena. */
void *arena_region(const arena *a, const kvgpt_plan *p, int i);

#endif

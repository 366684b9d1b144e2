/* arena/plan.c — building, checking and printing a memory plan. */
#include "arena/arena.h"
#include "common/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void arena_plan_init(kvgpt_plan *p)
{
    memset(p, 0, sizeof *p);
}

int arena_plan_ok(const kvgpt_plan *p)
{
    return p->n_regions >= 0;
}

int arena_plan_add(kvgpt_plan *p, kvgpt_region_id id, const char *name, kvgpt_region_kind kind,
                   kvgpt_space space, const char *type, size_t bytes, size_t layout, const char *shape_fmt, ...)
{
    if (p->n_regions < 0) return -1;
    size_t start, end;
    if (p->n_regions >= KVGPT_PLAN_MAX_REGIONS || (unsigned)id >= KVGPT_REGION_ID_COUNT ||
        arena_plan_find(p, id) >= 0 || !kv_align(p->total[space], ARENA_ALIGN, &start) ||
        !kv_add(start, bytes, &end) || !kv_add(end, layout, &end) || !kv_align(end, ARENA_ALIGN, &end)) {
        p->n_regions = -1;
        return -1;
    }
    kvgpt_region *r = &p->regions[p->n_regions];
    memset(r, 0, sizeof *r);
    r->id = id;
    snprintf(r->name, sizeof r->name, "%s", name);
    va_list ap;
    va_start(ap, shape_fmt);
    vsnprintf(r->shape, sizeof r->shape, shape_fmt, ap);
    va_end(ap);
    snprintf(r->type, sizeof r->type, "%s", type);
    r->kind = kind;
    r->space = space;
    r->bytes = bytes;
    r->layout_bytes = layout;
    r->offset = start;
    p->total[space] = end;
    return p->n_regions++;
}

int arena_plan_find(const kvgpt_plan *p, kvgpt_region_id id)
{
    for (int i = 0; i < p->n_regions; i++)
        if (p->regions[i].id == id) return i;
    return -1;
}

const kvgpt_region *kvgpt_plan_region(const kvgpt_plan *p, kvgpt_region_id id)
{
    int i = p ? arena_plan_find(p, id) : -1;
    return i < 0 ? NULL : &p->regions[i];
}

size_t kvgpt_plan_host_bytes(const kvgpt_plan *p)
{
    /* Caller memory may be unaligned: the slack lets the base be rounded up. */
    return p->total[KVGPT_SPACE_HOST] + ARENA_ALIGN - 1;
}

const char *arena_dtype_name(kvgpt_dtype dt)
{
    return dt == KVGPT_DTYPE_F16 ? "f16" : dt == KVGPT_DTYPE_BF16 ? "bf16" : "f32";
}

static const char *const kind_names[KVGPT_REGION_KIND_COUNT] = {
    "state", "weights", "KV cache", "activations", "scratch", "tokenizer"};

void kvgpt_plan_print(const kvgpt_plan *p, void *file)
{
    FILE *f = file ? (FILE *)file : stdout;
    const kvgpt_config *c = &p->config;
    fprintf(f, "kvgpt memory plan: n_layer %d, n_head %d, n_embd %d, block_size %d, vocab %d; "
               "batch %d, context %d\n",
            c->n_layer, c->n_head, c->n_embd, c->block_size, c->vocab_size, p->batch, p->context);
    for (int sp = 0; sp < 2; sp++) {
        if (p->total[sp] == 0) continue;
        fprintf(f, "%-7s %-28s %-22s %-6s %15s %10s %12s\n", sp ? "device" : "host", "region", "shape",
                "dtype", "bytes", "+layout", "MiB");
        for (int i = 0; i < p->n_regions; i++) {
            const kvgpt_region *r = &p->regions[i];
            if ((int)r->space != sp) continue;
            char lay[24] = "";
            if (r->layout_bytes) snprintf(lay, sizeof lay, "%zu", r->layout_bytes);
            fprintf(f, "%-7s %-28s %-22s %-6s %15zu %10s %12.2f\n", "", r->name, r->shape, r->type, r->bytes, lay,
                    (double)(r->bytes + r->layout_bytes) / (1024.0 * 1024.0));
        }
        for (int k = 0; k < KVGPT_REGION_KIND_COUNT; k++) {
            size_t sum = 0, lay = 0;
            int any = 0;
            for (int i = 0; i < p->n_regions; i++)
                if ((int)p->regions[i].space == sp && (int)p->regions[i].kind == k) {
                    sum += p->regions[i].bytes;
                    lay += p->regions[i].layout_bytes;
                    any = 1;
                }
            char l[24] = "";
            if (lay) snprintf(l, sizeof l, "%zu", lay);
            if (any)
                fprintf(f, "%-7s %-28s %-22s %-6s %15zu %10s %12.2f\n", "", "subtotal", kind_names[k], "", sum, l,
                        (double)(sum + lay) / (1024.0 * 1024.0));
        }
        fprintf(f, "%-7s %-28s %-22s %-6s %15zu %10s %12.2f\n", "", "TOTAL (64-byte aligned)", "", "",
                p->total[sp], "", (double)p->total[sp] / (1024.0 * 1024.0));
    }
    if (p->kernels[0]) {
        fprintf(f, "backend: %s kernels, %d thread%s", p->kernels, p->threads, p->threads == 1 ? "" : "s");
        if (p->threads > 1)
            fprintf(f, " (the caller's and %d more, %zu bytes = %.2f MiB of stack each, not in the arena)",
                    p->threads - 1, p->thread_stack, (double)p->thread_stack / 1048576.0);
        fprintf(f, "\n");
    }
    if (p->limit)
        fprintf(f, "arena limit: %zu bytes (%.2f MiB)%s\n", p->limit, (double)p->limit / 1048576.0,
                p->total[KVGPT_SPACE_HOST] > p->limit ? " — EXCEEDED" : "");
}

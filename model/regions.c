/* model/regions.c — every region a model's plan may hold, by typed id: one
 * descriptor table (name, kind, which space), and the plan itself: each
 * region's exact bytes from the config and options, before anything is taken.
 * Open binds the same ids (model/open.c); a region the config needs and the
 * plan lacks is an error there, never a NULL pointer taken for "absent". */
#include "model/model.h"
#include "common/status.h"
#include "common/half.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    kvgpt_region_kind kind;
    int device;              /* in the device space (the host when the device is the host) */
} region_desc;

static const region_desc regions[KVGPT_REGION_ID_COUNT] = {
    [KVGPT_R_MODEL] = {"model.state", KVGPT_REGION_STATE, 0},
    [KVGPT_R_PORT] = {"port.state", KVGPT_REGION_STATE, 0},
    [KVGPT_R_WMATS] = {"weights.index", KVGPT_REGION_STATE, 0},
    [KVGPT_R_SLOTS] = {"seq.slots", KVGPT_REGION_STATE, 0},
    [KVGPT_R_SLOT_TOKENS] = {"seq.tokens", KVGPT_REGION_STATE, 0},
    [KVGPT_R_GEN] = {"gen.state", KVGPT_REGION_STATE, 0},
    [KVGPT_R_ROWS_HOST] = {"rows.host", KVGPT_REGION_STATE, 0},
    [KVGPT_R_SAMPLER] = {"sampler.scratch", KVGPT_REGION_SCRATCH, 0},
    [KVGPT_R_LOGITS_HOST] = {"logits.host", KVGPT_REGION_ACTIVATIONS, 0},
    [KVGPT_R_TOKENIZER] = {"tokenizer", KVGPT_REGION_TOKENIZER, 0},
    [KVGPT_R_LOAD_SCRATCH] = {"load.scratch", KVGPT_REGION_SCRATCH, 0},
    [KVGPT_R_WTE] = {"wte", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_WPE] = {"wpe", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_LN1_W] = {"h.*.ln_1.weight", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_LN1_B] = {"h.*.ln_1.bias", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_LN2_W] = {"h.*.ln_2.weight", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_LN2_B] = {"h.*.ln_2.bias", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_ATTN_W] = {"h.*.attn.c_attn.weight", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_ATTN_B] = {"h.*.attn.c_attn.bias", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_PROJ_W] = {"h.*.attn.c_proj.weight", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_PROJ_B] = {"h.*.attn.c_proj.bias", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_FC_W] = {"h.*.mlp.c_fc.weight", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_FC_B] = {"h.*.mlp.c_fc.bias", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_MLP_PROJ_W] = {"h.*.mlp.c_proj.weight", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_MLP_PROJ_B] = {"h.*.mlp.c_proj.bias", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_LNF_W] = {"ln_f.weight", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_LNF_B] = {"ln_f.bias", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_LM_HEAD] = {"lm_head (untied)", KVGPT_REGION_WEIGHTS, 1},
    [KVGPT_R_KV_K] = {"kv.k", KVGPT_REGION_KV, 1},
    [KVGPT_R_KV_V] = {"kv.v", KVGPT_REGION_KV, 1},
    [KVGPT_R_ACT_X] = {"act.x", KVGPT_REGION_ACTIVATIONS, 1},
    [KVGPT_R_ACT_XN] = {"act.xn", KVGPT_REGION_ACTIVATIONS, 1},
    [KVGPT_R_ACT_QKV] = {"act.qkv", KVGPT_REGION_ACTIVATIONS, 1},
    [KVGPT_R_ACT_ATT] = {"act.att", KVGPT_REGION_ACTIVATIONS, 1},
    [KVGPT_R_ACT_FC] = {"act.fc", KVGPT_REGION_ACTIVATIONS, 1},
    [KVGPT_R_ACT_ROWS] = {"act.rows", KVGPT_REGION_ACTIVATIONS, 1},
    [KVGPT_R_LOGITS] = {"logits", KVGPT_REGION_ACTIVATIONS, 1},
    [KVGPT_R_PORT_WORK] = {"port.workspace", KVGPT_REGION_SCRATCH, 1},
};

/* One plan in the making: the device space it puts device regions in. */
typedef struct {
    kvgpt_plan *p;
    kvgpt_space dev;
} planner;

/* A shape for the budget, e.g. "[12,768]". */
static const char *shape(char buf[48], const char *fmt, ...) KV_PRINTF(2, 3);
static const char *shape(char buf[48], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, 48, fmt, ap);
    va_end(ap);
    return buf;
}

/* Region id of a × b × c elements of elem bytes (overflow-checked) plus
 * layout bytes, shown with the given shape and type. */
static void add(planner *pl, kvgpt_region_id id, const char *type, size_t elem, size_t a, size_t b, size_t c,
                size_t layout, const char *shp)
{
    const region_desc *d = &regions[id];
    size_t bytes = elem;
    if (!kv_mul(bytes, a, &bytes) || !kv_mul(bytes, b, &bytes) || !kv_mul(bytes, c, &bytes)) {
        pl->p->n_regions = -1;
        return;
    }
    arena_plan_add(pl->p, id, d->name, d->kind, d->device ? pl->dev : KVGPT_SPACE_HOST, type, bytes, layout, "%s",
                   shp);
}

/* A packed weight matrix ic -> oc, `layers` of them: its shape's bytes, and
 * what the port's layout adds (panel padding, scales) as layout bytes. */
static void add_matrix(planner *pl, kvgpt_region_id id, kvgpt_dtype dt, int layers, int ic, int oc, const char *shp)
{
    size_t packed = port_wmat_bytes(ic, oc, dt), exact = (size_t)ic * (size_t)oc * kv_dtype_size(dt);
    size_t all, all_packed;
    if (!kv_mul(exact, (size_t)layers, &all) || !kv_mul(packed, (size_t)layers, &all_packed) || packed < exact) {
        pl->p->n_regions = -1;
        return;
    }
    add(pl, id, arena_dtype_name(dt), 1, all, 1, 1, all_packed - all, shp);
}

size_t model_sampler_scratch_bytes(int vocab, int ctx)
{
    size_t draw = (size_t)vocab * 8, penalties = (size_t)ctx * 4;
    return draw > penalties ? draw : penalties;
}

kvgpt_status model_plan(const kvgpt_config *c, const kvgpt_options *o, size_t st_scratch,
                        const model_tok_plan *tok, kvgpt_plan *p, kvgpt_error *err)
{
    arena_plan_init(p);
    p->config = *c;
    if (o->batch < 1 || o->batch > 64)
        return kv_fail(err, KVGPT_ERR_ARG, "batch %d is out of range (1..64)", o->batch);
    if (o->context < 0 || o->context > c->block_size)
        return kv_fail(err, KVGPT_ERR_ARG, "context %d is out of range (0..block_size %d)", o->context,
                       c->block_size);
    if ((unsigned)o->weight_dtype > KVGPT_DTYPE_BF16 || (unsigned)o->kv_dtype > KVGPT_DTYPE_BF16)
        return kv_fail(err, KVGPT_ERR_ARG, "unknown dtype");
    kvgpt_status bs = port_plan_backend(o, p, err);
    if (bs) return bs;
    int ctx = o->context ? o->context : c->block_size;
    int B = o->batch, L = c->n_layer, C = c->n_embd, V = c->vocab_size, H = c->n_head;
    int R = MODEL_MAX_ROWS(ctx, B);
    if (o->logit_rows < 0) return kv_fail(err, KVGPT_ERR_ARG, "logit_rows %d is negative", o->logit_rows);
    int LR = o->logits_all ? R : o->logit_rows < B ? B : o->logit_rows < R ? o->logit_rows : R;
    p->batch = B;
    p->context = ctx;
    p->limit = o->arena_limit;
    planner pl = {p, port_device_is_host() ? KVGPT_SPACE_HOST : KVGPT_SPACE_DEVICE};
    const char *kt = arena_dtype_name(o->kv_dtype);
    kvgpt_dtype wd = o->weight_dtype;
    size_t BL = (size_t)B, SL = (size_t)ctx;

    /* Host: structs, slots, row tables, sampler, tokenizer, load scratch. */
    char sh[48];
    add(&pl, KVGPT_R_MODEL, "bytes", sizeof(struct kvgpt_model), 1, 1, 1, 0, "[struct]");
    add(&pl, KVGPT_R_PORT, "bytes", port_struct_bytes(), 1, 1, 1, 0, shape(sh, "[%s]", port_name()));
    add(&pl, KVGPT_R_WMATS, "bytes", sizeof(port_wmat), (size_t)L, 4, 1, 0, shape(sh, "[%d,4]", L));
    add(&pl, KVGPT_R_SLOTS, "bytes", sizeof(kv_slot), BL, 1, 1, 0, shape(sh, "[%d]", B));
    add(&pl, KVGPT_R_SLOT_TOKENS, "i32", sizeof(int32_t), BL, SL, 1, 0, shape(sh, "[%d,%d]", B, ctx));
    add(&pl, KVGPT_R_GEN, "bytes", sizeof(gen_slot), BL, 1, 1, 0, shape(sh, "[%d]", B));
    add(&pl, KVGPT_R_ROWS_HOST, "i32", sizeof(int32_t), 4, (size_t)R, 1, 0, shape(sh, "[4,%d]", R));
    add(&pl, KVGPT_R_SAMPLER, "bytes", model_sampler_scratch_bytes(V, ctx), 1, 1, 1, 0, "[scratch]");
    if (pl.dev != KVGPT_SPACE_HOST)
        add(&pl, KVGPT_R_LOGITS_HOST, "f32", 4, (size_t)LR, (size_t)V, 1, 0, shape(sh, "[%d,%d]", LR, V));
    if (tok->kind)
        add(&pl, KVGPT_R_TOKENIZER, "bytes", tok->table_bytes, 1, 1, 1, 0, tok->kind == 2 ? "[bpe]" : "[chars]");
    size_t staging = (size_t)4 * C * sizeof(float) * 2;
    /* Also the BPE encoder's work space after open: a few MiB take pieces of 100 kB. */
    if (staging < ((size_t)8 << 20)) staging = (size_t)8 << 20;
    size_t load = st_scratch + staging;
    if (tok->kind && tok->file_bytes > load) load = tok->file_bytes;
    add(&pl, KVGPT_R_LOAD_SCRATCH, "bytes", load, 1, 1, 1, 0, "[open; encode]");

    /* Weights, converted to the internal layout (matrices packed in weight_dtype). */
    add_matrix(&pl, KVGPT_R_WTE, wd, 1, C, V, shape(sh, "[%d,%d]", V, C));
    add(&pl, KVGPT_R_WPE, "f32", 4, SL, (size_t)C, 1, 0, shape(sh, "[%d,%d]", ctx, C));
    const kvgpt_region_id lns[2][2] = {{KVGPT_R_LN1_W, KVGPT_R_LN1_B}, {KVGPT_R_LN2_W, KVGPT_R_LN2_B}};
    for (int i = 0; i < 2; i++) {
        add(&pl, lns[i][0], "f32", 4, (size_t)L, (size_t)C, 1, 0, shape(sh, "[%d,%d]", L, C));
        if (c->bias) add(&pl, lns[i][1], "f32", 4, (size_t)L, (size_t)C, 1, 0, shape(sh, "[%d,%d]", L, C));
    }
    const struct { kvgpt_region_id w, b; int ic, oc; } mats[] = {
        {KVGPT_R_ATTN_W, KVGPT_R_ATTN_B, C, 3 * C}, {KVGPT_R_PROJ_W, KVGPT_R_PROJ_B, C, C},
        {KVGPT_R_FC_W, KVGPT_R_FC_B, C, 4 * C}, {KVGPT_R_MLP_PROJ_W, KVGPT_R_MLP_PROJ_B, 4 * C, C}};
    for (int i = 0; i < 4; i++) {
        add_matrix(&pl, mats[i].w, wd, L, mats[i].ic, mats[i].oc, shape(sh, "[%d,%d,%d]", L, mats[i].oc, mats[i].ic));
        if (c->bias)
            add(&pl, mats[i].b, "f32", 4, (size_t)L, (size_t)mats[i].oc, 1, 0, shape(sh, "[%d,%d]", L, mats[i].oc));
    }
    add(&pl, KVGPT_R_LNF_W, "f32", 4, (size_t)C, 1, 1, 0, shape(sh, "[%d]", C));
    if (c->bias) add(&pl, KVGPT_R_LNF_B, "f32", 4, (size_t)C, 1, 1, 0, shape(sh, "[%d]", C));
    if (c->lm_head_untied) add_matrix(&pl, KVGPT_R_LM_HEAD, wd, 1, C, V, shape(sh, "[%d,%d]", V, C));

    /* The KV cache: the full context of every layer for every slot. */
    size_t kvb = kv_bytes(L, B, H, C / H, ctx, o->kv_dtype);
    if (!kvb) p->n_regions = -1;
    shape(sh, "[%d,%d,%d,%d,%d]", L, B, H, ctx, C / H);
    add(&pl, KVGPT_R_KV_K, kt, kvb, 1, 1, 1, 0, sh);
    add(&pl, KVGPT_R_KV_V, kt, kvb, 1, 1, 1, 0, sh);

    /* Activations for R rows (a whole window, or one row per slot). */
    const struct { kvgpt_region_id id; int w; } acts[] = {
        {KVGPT_R_ACT_X, C}, {KVGPT_R_ACT_XN, C}, {KVGPT_R_ACT_QKV, 3 * C}, {KVGPT_R_ACT_ATT, C}, {KVGPT_R_ACT_FC, 4 * C}};
    for (int i = 0; i < 5; i++)
        add(&pl, acts[i].id, "f32", 4, (size_t)R, (size_t)acts[i].w, 1, 0, shape(sh, "[%d,%d]", R, acts[i].w));
    add(&pl, KVGPT_R_ACT_ROWS, "i32", sizeof(int32_t), 3, (size_t)R, 1, 0, shape(sh, "[3,%d]", R));
    add(&pl, KVGPT_R_LOGITS, "f32", 4, (size_t)LR, (size_t)V, 1, 0, shape(sh, "[%d,%d]", LR, V));
    size_t ws = port_workspace_bytes(R, ctx, C, p->threads);
    add(&pl, KVGPT_R_PORT_WORK, "bytes", ws ? ws : 64, 1, 1, 1, 0, shape(sh, "[%s]", port_name()));

    if (!arena_plan_ok(p))
        return kv_fail(err, KVGPT_ERR_NOMEM, "the memory plan overflows (sizes too large for this machine)");
    if (o->arena_limit && p->total[KVGPT_SPACE_HOST] > o->arena_limit)
        return kv_fail(err, KVGPT_ERR_NOMEM, "arena limit: Requested %zu, available %zu, missing %zu bytes",
                       p->total[KVGPT_SPACE_HOST], o->arena_limit, p->total[KVGPT_SPACE_HOST] - o->arena_limit);
    return KVGPT_OK;
}

void *model_region(const kvgpt_model *m, kvgpt_region_id id)
{
    int i = arena_plan_find(&m->plan, id);
    if (i < 0) return NULL;
    const kvgpt_region *r = &m->plan.regions[i];
    if (r->space == KVGPT_SPACE_DEVICE) return (char *)m->device_base + r->offset;
    return arena_region(&m->host, &m->plan, i);
}

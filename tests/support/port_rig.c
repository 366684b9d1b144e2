/* tests/support/port_rig.c — a port without a model (see port_rig.h). */
#include "tests/support/port_rig.h"

#include <stdlib.h>
#include <string.h>

#define RIG_ALIGN 256

kvgpt_status rig_open(port_rig *r, size_t bytes, int rows, int ctx, int n_embd, kvgpt_error *err)
{
    memset(r, 0, sizeof *r);
    void *base = NULL;
    kvgpt_status s = port_device_arena(&base, bytes, err);
    if (s) return s;
    r->base = base;
    r->bytes = bytes;
    r->port_mem = calloc(1, port_struct_bytes());
    size_t ws_bytes = port_workspace_bytes(rows, ctx, n_embd, 1);
    void *ws = rig_take(r, ws_bytes);
    if (!r->port_mem || !ws) {
        rig_close(r);
        err->status = KVGPT_ERR_NOMEM;
        strcpy(err->msg, "rig_open: no memory for the port or its workspace");
        return KVGPT_ERR_NOMEM;
    }
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.threads = 1;
    if ((s = port_init(&r->p, r->port_mem, base, bytes, ws, ws_bytes, &o, err))) {
        r->p = NULL;
        rig_close(r);
    }
    return s;
}

void *rig_take(port_rig *r, size_t bytes)
{
    size_t at = (r->used + RIG_ALIGN - 1) / RIG_ALIGN * RIG_ALIGN;
    if (at > r->bytes || bytes > r->bytes - at) return NULL;
    r->used = at + bytes;
    return r->base + at;
}

void *rig_put(port_rig *r, const void *host, size_t bytes)
{
    void *d = rig_take(r, bytes);
    if (d && port_upload(r->p, d, host, bytes) != KVGPT_OK) return NULL;
    return d;
}

int rig_get(port_rig *r, void *host, const void *dev, size_t bytes)
{
    kvgpt_error err;
    if (port_download(r->p, host, dev, bytes) != KVGPT_OK) return 1;
    return port_sync(r->p, &err) != KVGPT_OK;
}

void rig_close(port_rig *r)
{
    if (r->p) port_shutdown(r->p);
    if (r->base) port_device_arena_free(r->base);
    free(r->port_mem);
    memset(r, 0, sizeof *r);
}

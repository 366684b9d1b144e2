/* tests/support/port_rig.h — a backend (port/port.h) without a model: its own
 * device arena, a workspace in it, and slices of it for a test's buffers.
 * The CUDA suites drive the port directly with it; on the CPU port the
 * device arena does not exist and rig_open fails with KVGPT_ERR_BACKEND. */
#ifndef KVGPT_TEST_PORT_RIG_H
#define KVGPT_TEST_PORT_RIG_H

#include <stddef.h>
#include "port/port.h"

typedef struct {
    port *p;
    void *port_mem;     /* port_struct_bytes() of host memory */
    char *base;         /* the device arena */
    size_t bytes, used;
} port_rig;

/* A port over a device arena of `bytes`, whose workspace is planned for
 * forwards of `rows` rows over a context of ctx, n_embd wide. */
kvgpt_status rig_open(port_rig *r, size_t bytes, int rows, int ctx, int n_embd, kvgpt_error *err);
/* The next `bytes` of the device arena (256-byte aligned); NULL when it is full. */
void *rig_take(port_rig *r, size_t bytes);
/* A device copy of host memory; NULL when the arena is full or the copy failed. */
void *rig_put(port_rig *r, const void *host, size_t bytes);
/* Device memory back to the host, all queued work done first; 0 on success. */
int rig_get(port_rig *r, void *host, const void *dev, size_t bytes);
void rig_close(port_rig *r);

#endif

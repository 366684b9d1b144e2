/* tests/test_port.c — the parts of the backend contract (port/port.h) that
 * need no device, for whichever port this build has (so CI, which has no
 * GPU, runs the CUDA port's own share too): sizes are exact where known and
 * refused when they overflow, and the CPU port answers the calls it has no
 * use for (graphs, device sampling, the device probe) as port.h says. */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvgpt.h"
#include "port/port.h"
#include "tests/support/fixtures.h"
#include "tests/support/suite.h"

START_TEST(test_sizes)
{
    static const kvgpt_dtype dts[] = {KVGPT_DTYPE_F32, KVGPT_DTYPE_F16, KVGPT_DTYPE_BF16};
    static const int shapes[][2] = {{768, 2304}, {3072, 768}, {1600, 50257}, {100, 37}, {3, 5}};
    for (size_t d = 0; d < 3; d++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const size_t ic = (size_t)shapes[s][0], oc = (size_t)shapes[s][1], es = dts[d] == KVGPT_DTYPE_F32 ? 4 : 2;
            const size_t b = port_wmat_bytes((int)ic, (int)oc, dts[d]);
            /* At least the parameters; the layout pads by less than 16 columns or 8 inputs. */
            ck_assert_msg(b >= ic * oc * es && b < (ic + 8) * (oc + 16) * es, "%s port: %zux%zu dtype %d: %zu bytes",
                          port_name(), ic, oc, (int)dts[d], b);
        }
    ck_assert_uint_eq(port_wmat_bytes(-1, 5, KVGPT_DTYPE_F32), SIZE_MAX);
    ck_assert_uint_eq(port_wmat_bytes(5, -1, KVGPT_DTYPE_BF16), SIZE_MAX);
    const size_t ws = port_workspace_bytes(1024, 1024, 1600, 1);
    ck_assert_msg(ws > 0 && ws != SIZE_MAX, "%s port: workspace %zu", port_name(), ws);
    ck_assert_msg(port_workspace_bytes(1, 1, 1, 1) <= ws, "the workspace shrinks as the model grows");
    if (!port_device_is_host())   /* the device's partials: rows x splits x 3C floats */
        ck_assert_uint_eq(port_workspace_bytes(INT_MAX, INT_MAX, INT_MAX, 1), SIZE_MAX);
    printf("  %s port: GPT-2 XL workspace %zu bytes; overflowing sizes refused\n", port_name(), ws);
}
END_TEST

START_TEST(test_cpu_port_answers)
{
    if (!port_device_is_host()) {
        tf_skip(__func__, "the CUDA port's answers need a device (test_cuda_ops has them)");
        return;
    }
    void *mem = calloc(1, port_struct_bytes());
    const size_t ws_bytes = port_workspace_bytes(4, 64, 64, 1);
    void *ws = calloc(1, ws_bytes ? ws_bytes : 1);
    ck_assert(mem && ws);
    kvgpt_options o;
    kvgpt_options_default(&o);
    o.threads = 1;
    port *p = NULL;
    kvgpt_error err = {0, ""};
    ck_assert_int_eq(port_init(&p, mem, NULL, 0, ws, ws_bytes, &o, &err), KVGPT_OK);
    char host[256];
    ck_assert_int_eq(port_host_memory(p, host, sizeof host, &err), KVGPT_OK);
    ck_assert_int_eq(port_graph_record(p, 1), 0);   /* no graphs: the model issues every call */
    ck_assert_int_eq(port_graph_begin(p, 1, 1), 0);
    ck_assert_int_eq(port_graph_end(p, &err), KVGPT_OK);
    port_graph_record(p, 0);
    float logits[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    port_sample_params sp = {0.8f, 1.0f, 2};
    int32_t id = -1;
    uint64_t rng = 42;
    ck_assert_int_eq(port_sample(p, &id, logits, 1, 4, &sp, &rng, &err), KVGPT_ERR_UNSUPPORTED);
    ck_assert_msg(err.status == KVGPT_ERR_UNSUPPORTED && strstr(err.msg, "host"), "message: %s", err.msg);
    ck_assert_msg(id == -1 && rng == 42, "an unsupported draw changed its outputs");
    ck_assert(port_probe_read_gbps((size_t)1 << 20, 1) == 0.0);   /* the bench probes host memory itself */
    port_shutdown(p);
    free(mem);
    free(ws);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("port");
    TCase *tc = tcase_create("port");
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_cpu_port_answers);
    suite_add_tcase(s, tc);
    return tf_run_suite(s);
}

/* ops/kernels.c — one kernel set's table, compiled once per set like the
 * kernels it lists (see ops_internal.h). */
#include "ops/ops_internal.h"

const ops_kernels OPS_K(kernels) = {
    OPS_STR(OPS_SET),
    OPS_K(matmul),
    OPS_K(layernorm),
    OPS_K(gelu_erf),
    OPS_K(gelu_tanh),
    OPS_K(add),
    OPS_K(softmax),
    OPS_K(attention),
};

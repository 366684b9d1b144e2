/* common/half.h — scalar f32 <-> f16/bf16 conversions (round to nearest
 * even) and dtype sizes: what the loader, the tools and every backend share.
 * The kernels have vector loads of their own (ops/ops_internal.h). */
#ifndef KVGPT_HALF_H
#define KVGPT_HALF_H

#include <stddef.h>
#include <stdint.h>
#include "kvgpt.h"

float kv_bf16_to_f32(uint16_t h);
uint16_t kv_f32_to_bf16(float f);
float kv_f16_to_f32(uint16_t h);
uint16_t kv_f32_to_f16(float f);
/* Bytes of one element of dt. */
size_t kv_dtype_size(kvgpt_dtype dt);

#endif

/* common/half.c — scalar f32 <-> f16/bf16 conversions (round to nearest even).
 *
 * Bit-level and branchy on purpose: packing and the KV store are not hot, and
 * this way the rounding is the same on every machine, F16C or not.
 */
#include "common/half.h"

#include <string.h>

static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

float kv_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t kv_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)           /* NaN: keep sign, force quiet */
        return (uint16_t)((x >> 16) | 0x0040u);
    x += 0x7fffu + ((x >> 16) & 1u);                /* overflow to Inf is correct RNE */
    return (uint16_t)(x >> 16);
}

float kv_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        float v = (float)m * 0x1p-24f;              /* exact: m < 2^10 */
        return bits_f32(f32_bits(v) | sign);
    }
    if (e == 31)
        return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t kv_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x > 0x7f800000u)                            /* NaN: keep payload top, quiet */
        return (uint16_t)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));
    if (x >= 0x477ff000u)                           /* >= 65520 rounds to Inf */
        return (uint16_t)(sign | 0x7c00u);
    if (x < 0x38800000u) {                          /* below 2^-14: f16 subnormal */
        if (x < 0x33000000u)                        /* below 2^-25: rounds to 0 */
            return sign;
        uint32_t e = x >> 23;
        uint32_t mant = (x & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - e;                  /* 14..24 */
        uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (r & 1u)))
            r++;
        return (uint16_t)(sign | r);
    }
    x -= 112u << 23;                                /* rebias the exponent */
    x += 0xfffu + ((x >> 13) & 1u);
    return (uint16_t)(sign | (x >> 13));
}

size_t kv_dtype_size(kvgpt_dtype dt)
{
    return dt == KVGPT_DTYPE_F32 ? 4 : 2;
}

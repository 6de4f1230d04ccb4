/* ew_tanh_s16.c - int16 TANH: TFLM's reference_integer_ops::Tanh (int16 overload),
 * linear interpolation in the 256-entry sigmoid table; edgewave.integer.tanh_eval. */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

void ew_tanh_s16(const int16_t *x, int32_t n, const ew_transcendental_params *p, int16_t *out)
{
    assert(n >= 0 && p != NULL && (n == 0 || (x != NULL && out != NULL)));
    assert(p->input_left_shift >= 0 && p->input_left_shift <= 31);
    const int32_t left_shift = p->input_left_shift;
    const uint32_t rounding = left_shift > 0 ? (uint32_t)1 << (left_shift - 1) : 0u;
    int32_t i;
    for (i = 0; i < n; ++i) {
        /* input scaled to 1/(3*4096) per LSB; the product and sum wrap like TFLM's int32 */
        const int32_t v = (int32_t)((uint32_t)x[i] * (uint32_t)p->input_multiplier + rounding) >> left_shift;
        const uint32_t a = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
        const uint32_t h = a >> 8;
        int32_t result;
        if (h >= 255u) {
            result = 0xFFFF << 8;
        } else {
            const int32_t ua = ew_sigmoid_table_u16[h];
            const int32_t ub = ew_sigmoid_table_u16[h + 1u];
            result = (ua << 8) + (int32_t)(a & 0xFFu) * (ub - ua);
        }
        if (v >= 0) {
            result = result - (1 << 23) + (1 << 7);
        } else {
            result = -result + (1 << 23) + (1 << 7) - 1;
        }
        out[i] = (int16_t)(result >> 8);
    }
}

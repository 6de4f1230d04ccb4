/* ew_requant_s16.c - QUANTIZE int16_t -> int16_t or int8_t (TFLM reference_ops::Requantize;
 * edgewave.integer.requant_eval, parameters from requant_params). */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

void ew_requant_s16(const int16_t *x, int32_t n, const ew_requant_params *p, int16_t *out)
{
    int32_t i;
    assert(n >= 0 && p != NULL && (n == 0 || (x != NULL && out != NULL)));
    assert((p->mult == 0 || p->mult >= (1 << 30)) && p->shift >= -31 && p->shift <= 31);
    for (i = 0; i < n; ++i) {
        out[i] = (int16_t)ew_requant_one(x[i], p);
    }
}

/* QUANTIZE int16_t -> int8_t: the step from an int8 model's 16-bit input stage to int8
 * (the same Requantize, clamped to int8). */
void ew_requant_s16_s8(const int16_t *x, int32_t n, const ew_requant_params *p, int8_t *out)
{
    int32_t i;
    assert(n >= 0 && p != NULL && (n == 0 || (x != NULL && out != NULL)));
    assert((p->mult == 0 || p->mult >= (1 << 30)) && p->shift >= -31 && p->shift <= 31);
    for (i = 0; i < n; ++i) {
        out[i] = (int8_t)ew_requant_one(x[i], p);
    }
}

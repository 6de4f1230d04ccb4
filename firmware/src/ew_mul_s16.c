/* ew_mul_s16.c - MUL of two int16_t vectors (TFLM reference integer MUL; edgewave.integer.mul_eval). */
#include "ew_fixedpoint.h"

void ew_mul_s16(const int16_t *a, const int16_t *b, int32_t n, const ew_mul_params *p, int16_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = (int16_t)ew_mul_one(a[i], b[i], p);
    }
}

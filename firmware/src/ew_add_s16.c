/* ew_add_s16.c - ADD of two int16_t vectors (TFLM reference integer ADD; edgewave.integer.add_eval). */
#include "ew_fixedpoint.h"

void ew_add_s16(const int16_t *a, const int16_t *b, int32_t n, const ew_add_params *p, int16_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = (int16_t)ew_add_one(a[i], b[i], p);
    }
}

/* ew_add_s8.c - ADD of two int8_t vectors (TFLM reference integer ADD; edgewave.integer.add_eval). */
#include "ew_fixedpoint.h"

void ew_add_s8(const int8_t *a, const int8_t *b, int32_t n, const ew_add_params *p, int8_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = (int8_t)ew_add_one(a[i], b[i], p);
    }
}

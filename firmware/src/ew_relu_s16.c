/* ew_relu_s16.c - RELU of a int16_t vector with requantization (TFLM ReluQuantized;
 * edgewave.integer.relu_eval, parameters from relu_params). */
#include "ew_fixedpoint.h"

void ew_relu_s16(const int16_t *x, int32_t n, const ew_requant_params *p, int16_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        out[i] = (int16_t)ew_requant_one(x[i], p);
    }
}

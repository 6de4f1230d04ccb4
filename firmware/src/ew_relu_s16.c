/* ew_relu_s16.c - RELU of a int16_t vector with requantization (TFLM ReluQuantized;
 * edgewave.integer.relu_eval, parameters from relu_params). */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

void ew_relu_s16(const int16_t *x, int32_t n, const ew_requant_params *p, int16_t *out)
{
    int32_t i;
    assert(n >= 0 && p != NULL && (n == 0 || (x != NULL && out != NULL)));
    assert((p->mult == 0 || p->mult >= (1 << 30)) && p->shift >= -31 && p->shift <= 31);
    for (i = 0; i < n; ++i) {
        out[i] = (int16_t)ew_requant_one(x[i], p);
    }
}

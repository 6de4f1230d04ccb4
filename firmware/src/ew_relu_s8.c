/* ew_relu_s8.c - RELU of a int8_t vector with requantization (TFLM ReluQuantized;
 * edgewave.integer.relu_eval, parameters from relu_params). */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

void ew_relu_s8(const int8_t *x, int32_t n, const ew_requant_params *p, int8_t *out)
{
    int32_t i;
    assert(n >= 0 && p != NULL && (n == 0 || (x != NULL && out != NULL)));
    assert((p->mult == 0 || p->mult >= (1 << 30)) && p->shift >= -31 && p->shift <= 31);
    for (i = 0; i < n; ++i) {
        out[i] = (int8_t)ew_requant_one(x[i], p);
    }
}

/* ew_lut_s8.c - 256-entry table lookup for int8 elementwise functions (TANH, LOGISTIC:
 * tables from edgewave.integer.lut_s8, lut[j] = f(j - 128)). */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

void ew_lut_s8(const int8_t *x, int32_t n, const int8_t lut[256], int8_t *out)
{
    int32_t i;
    assert(n >= 0 && (n == 0 || (x != NULL && lut != NULL && out != NULL)));
    for (i = 0; i < n; ++i) {
        out[i] = lut[(int32_t)x[i] + 128];
    }
}

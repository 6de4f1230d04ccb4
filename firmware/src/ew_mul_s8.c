/* ew_mul_s8.c - MUL of two int8_t vectors (TFLM reference integer MUL; edgewave.integer.mul_eval). */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

void ew_mul_s8(const int8_t *a, const int8_t *b, int32_t n, const ew_mul_params *p, int8_t *out)
{
    int32_t i;
    assert(n >= 0 && p != NULL && (n == 0 || (a != NULL && b != NULL && out != NULL)));
    assert((p->mult == 0 || p->mult >= (1 << 30)) && p->shift >= -31 && p->shift <= 31);
    for (i = 0; i < n; ++i) {
        out[i] = (int8_t)ew_mul_one(a[i], b[i], p);
    }
}

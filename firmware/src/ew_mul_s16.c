/* ew_mul_s16.c - MUL of two int16_t vectors (TFLM reference integer MUL; edgewave.integer.mul_eval). */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

void ew_mul_s16(const int16_t *a, const int16_t *b, int32_t n, const ew_mul_params *p, int16_t *out)
{
    int32_t i;
    assert(n >= 0 && p != NULL && (n == 0 || (a != NULL && b != NULL && out != NULL)));
    assert((p->mult == 0 || p->mult >= (1 << 30)) && p->shift >= -31 && p->shift <= 31);
    assert(p->zp_a == 0 && p->zp_b == 0 && p->zp_out == 0); /* int16: zero points 0 */
    for (i = 0; i < n; ++i) {
        out[i] = (int16_t)ew_mul_one(a[i], b[i], p);
    }
}

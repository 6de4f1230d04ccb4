/* ew_add_s8.c - ADD of two int8_t vectors (TFLM reference integer ADD; edgewave.integer.add_eval). */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

void ew_add_s8(const int8_t *a, const int8_t *b, int32_t n, const ew_add_params *p, int8_t *out)
{
    int32_t i;
    assert(n >= 0 && p != NULL && (n == 0 || (a != NULL && b != NULL && out != NULL)));
    assert(p->left_shift == 20);
    assert((p->mult_a == 0 || p->mult_a >= (1 << 30)) && p->shift_a >= -31 && p->shift_a <= 31);
    assert((p->mult_b == 0 || p->mult_b >= (1 << 30)) && p->shift_b >= -31 && p->shift_b <= 31);
    assert((p->mult_out == 0 || p->mult_out >= (1 << 30)) && p->shift_out >= -31 && p->shift_out <= 31);
    for (i = 0; i < n; ++i) {
        out[i] = (int8_t)ew_add_one(a[i], b[i], p);
    }
}

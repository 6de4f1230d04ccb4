/* ew_logistic_s16.c - int16 LOGISTIC: TFLM's reference_integer_ops::Logistic (int16
 * overload), linear interpolation in the 256-entry sigmoid table;
 * edgewave.integer.logistic_eval. */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

void ew_logistic_s16(const int16_t *x, int32_t n, const ew_transcendental_params *p, int16_t *out)
{
    assert(n >= 0 && p != NULL && (n == 0 || (x != NULL && out != NULL)));
    assert(p->input_left_shift >= 0 && p->input_left_shift <= 31);
    /* 9 fraction bits per table step; sigmoid(v) = 1 - sigmoid(-v): mirrored around 1 (2^25) for v < 0 */
    ew_sigmoid_s16(x, n, p, out, 9, 0x7FFF << 10, 0, 1 << 25, 10);
}

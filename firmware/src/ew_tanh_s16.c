/* ew_tanh_s16.c - int16 TANH: TFLM's reference_integer_ops::Tanh (int16 overload),
 * linear interpolation in the 256-entry sigmoid table; edgewave.integer.tanh_eval. */
#include "ew_assert.h"

#include "ew_fixedpoint.h"

void ew_tanh_s16(const int16_t *x, int32_t n, const ew_transcendental_params *p, int16_t *out)
{
    assert(n >= 0 && p != NULL && (n == 0 || (x != NULL && out != NULL)));
    assert(p->input_left_shift >= 0 && p->input_left_shift <= 31);
    /* tanh(v) = 2 sigmoid(2v) - 1: 8 fraction bits per table step, the table less its value at 0 (2^23) */
    ew_sigmoid_s16(x, n, p, out, 8, 0xFFFF << 8, 1 << 23, 1 << 23, 8);
}

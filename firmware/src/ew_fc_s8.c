/*
 * ew_fc_s8.c - int8 FULLY_CONNECTED over tap vectors (TFLM reference_integer_ops::
 * FullyConnected, per-channel; edgewave.integer.fc_eval).
 *
 *   acc[o] = bias[o] + sum_k w[o][k] * (x[k] - zp_in)      (int32, wraps)
 *   out[o] = clamp(zp_out + MultiplyByQuantizedMultiplier(acc[o], mult[o], shift[o]))
 *
 * Two implementations of the accumulation, equal modulo 2^32 and so bit-exact:
 *   - portable C (any target; also forced by defining EW_FORCE_PORTABLE);
 *   - Arm DSP extension (__ARM_FEATURE_DSP: Cortex-M4/M7/M33/M55): two output rows at
 *     a time share every input load; four inputs per step are sign-extended to 16-bit
 *     pairs with (x - zp_in) folded in (SXTAB16), weights with SXTB16, and multiplied
 *     with dual 16-bit MACs (SMLAD), as CMSIS-NN's arm_nn_vec_mat_mult_t_s8 does.
 */
#include "ew_assert.h"

#include "ew_arm_dsp.h"
#include "ew_fixedpoint.h"

static int32_t requantize_s8(uint32_t acc, int32_t mult, int32_t shift, const ew_fc_params *p)
{
    return ew_offset_clamp(ew_mbqm((int32_t)acc, mult, shift), p->zp_out, p->act_min, p->act_max);
}

/* One output row, portable: acc + sum over all taps of w * (x - zp_in), modulo 2^32. */
static uint32_t dot_row(const int8_t *const *taps, int32_t n_taps, int32_t tap_len,
                        const int8_t *w_row, int32_t zp_in, uint32_t acc)
{
    int32_t t, i;
    for (t = 0; t < n_taps; ++t) {
        const int8_t *x = taps[t];
        for (i = 0; i < tap_len; ++i) {
            acc += (uint32_t)(((int32_t)x[i] - zp_in) * (int32_t)w_row[i]);
        }
        w_row += tap_len;
    }
    return acc;
}

#ifdef EW_ARM_DSP
/* Two output rows (w0, w1 = w0 + row_len) at once. */
static void dot_rows2(const int8_t *const *taps, int32_t n_taps, int32_t tap_len,
                      const int8_t *w0, const int8_t *w1, int32_t zp_in,
                      uint32_t *acc0_io, uint32_t *acc1_io)
{
    /* -zp_in in both 16-bit halves, added by SXTAB16 */
    const int16x2_t neg_zp = (int16x2_t)(((uint32_t)(uint16_t)(int16_t)-zp_in) * 0x00010001u);
    int32_t acc0 = (int32_t)*acc0_io;
    int32_t acc1 = (int32_t)*acc1_io;
    int32_t t, i;
    for (t = 0; t < n_taps; ++t) {
        const int8_t *x = taps[t];
        for (i = 0; i + 4 <= tap_len; i += 4) {
            const int8x4_t xv = ew_read_s8x4(x + i);
            const int16x2_t x02 = __sxtab16(neg_zp, xv);       /* x0 - zp, x2 - zp */
            const int16x2_t x13 = ew_sxtab16_ror8(neg_zp, xv); /* x1 - zp, x3 - zp */
            const int8x4_t wa = ew_read_s8x4(w0 + i);
            const int8x4_t wb = ew_read_s8x4(w1 + i);
            acc0 = __smlad(x02, __sxtb16(wa), acc0);
            acc0 = __smlad(x13, ew_sxtb16_ror8(wa), acc0);
            acc1 = __smlad(x02, __sxtb16(wb), acc1);
            acc1 = __smlad(x13, ew_sxtb16_ror8(wb), acc1);
        }
        for (; i < tap_len; ++i) {
            const int32_t xi = (int32_t)x[i] - zp_in;
            acc0 = (int32_t)((uint32_t)acc0 + (uint32_t)(xi * w0[i]));
            acc1 = (int32_t)((uint32_t)acc1 + (uint32_t)(xi * w1[i]));
        }
        w0 += tap_len;
        w1 += tap_len;
    }
    *acc0_io = (uint32_t)acc0;
    *acc1_io = (uint32_t)acc1;
}
#endif /* EW_ARM_DSP */

void ew_fc_s8(const int8_t *const *taps, int32_t n_taps, int32_t tap_len,
              const int8_t *w, const int32_t *bias, int32_t n_out,
              const int32_t *mult, const int32_t *shift,
              const ew_fc_params *p, int8_t *out)
{
    const int32_t row_len = n_taps * tap_len;
    int32_t o = 0;
    /* documented preconditions (edgewave_rt.h), checked in debug builds */
    assert(n_taps >= 0 && tap_len >= 0 && n_out >= 0 && p != NULL);
    assert(n_taps == 0 || taps != NULL);
    assert(n_out == 0 || (mult != NULL && shift != NULL && out != NULL && (row_len == 0 || w != NULL)));
    if (n_out > 0) ew_assert_multipliers(mult, shift, n_out, 31);
#ifdef EW_ARM_DSP
    for (; o + 2 <= n_out; o += 2) {
        const int8_t *w0 = w + (int32_t)o * row_len;
        uint32_t acc0 = bias ? (uint32_t)bias[o] : 0u;
        uint32_t acc1 = bias ? (uint32_t)bias[o + 1] : 0u;
        dot_rows2(taps, n_taps, tap_len, w0, w0 + row_len, p->zp_in, &acc0, &acc1);
        out[o] = (int8_t)requantize_s8(acc0, mult[o], shift[o], p);
        out[o + 1] = (int8_t)requantize_s8(acc1, mult[o + 1], shift[o + 1], p);
    }
#endif
    for (; o < n_out; ++o) {
        const uint32_t acc = dot_row(taps, n_taps, tap_len, w + (int32_t)o * row_len, p->zp_in,
                                     bias ? (uint32_t)bias[o] : 0u);
        out[o] = (int8_t)requantize_s8(acc, mult[o], shift[o], p);
    }
}

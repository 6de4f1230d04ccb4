/*
 * ew_fc_s16.c - 16x8 FULLY_CONNECTED over tap vectors: int16 inputs, int8 weights,
 * int64 bias (TFLM reference_integer_ops::FullyConnected, int16 with int64 bias;
 * edgewave.integer.fc_eval).
 *
 *   acc[o] = bias[o] + sum_k w[o][k] * x[k]                  (int64)
 *   out[o] = clamp(MultiplyByQuantizedMultiplier(int64 acc[o], mult[o], shift[o]))
 *
 * Two implementations of the accumulation, both exact in int64:
 *   - portable C (any target; also forced by defining EW_FORCE_PORTABLE);
 *   - Arm DSP extension (__ARM_FEATURE_DSP): two output rows share every input load;
 *     inputs are paired (x0,x2)/(x1,x3) to match SXTB16-extended weights and
 *     multiplied with 64-bit-accumulating dual MACs (SMLALD).
 */
#include "ew_assert.h"

#include "ew_arm_dsp.h"
#include "ew_fixedpoint.h"

static int32_t requantize_s16(int64_t acc, int32_t mult, int32_t shift, const ew_fc_params *p)
{
    return ew_clamp(ew_mbqm64(acc, mult, shift), p->act_min, p->act_max);
}

static int64_t start(const int64_t *bias, int32_t o) { return bias ? bias[o] : 0; }

/* bias + products: the sum wraps modulo 2^64 (only a pathological bias gets near). */
static int64_t add_wrap64(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

static int64_t dot_row(const int16_t *const *taps, int32_t n_taps, int32_t tap_len, const int8_t *w_row)
{
    int64_t acc = 0;
    int32_t t, i;
    for (t = 0; t < n_taps; ++t) {
        const int16_t *x = taps[t];
        for (i = 0; i < tap_len; ++i) {
            acc += (int32_t)x[i] * (int32_t)w_row[i];
        }
        w_row += tap_len;
    }
    return acc;
}

#ifdef EW_ARM_DSP
static void dot_rows2(const int16_t *const *taps, int32_t n_taps, int32_t tap_len,
                      const int8_t *w0, const int8_t *w1, int64_t *acc0_out, int64_t *acc1_out)
{
    int64_t acc0 = 0, acc1 = 0;
    int32_t t, i;
    for (t = 0; t < n_taps; ++t) {
        const int16_t *x = taps[t];
        for (i = 0; i + 4 <= tap_len; i += 4) {
            const int32_t x01 = ew_read_s16x2(x + i);
            const int32_t x23 = ew_read_s16x2(x + i + 2);
            const int16x2_t x02 = ew_pack_lo(x01, x23); /* x0, x2 */
            const int16x2_t x13 = ew_pack_hi(x01, x23); /* x1, x3 */
            const int8x4_t wa = ew_read_s8x4(w0 + i);
            const int8x4_t wb = ew_read_s8x4(w1 + i);
            acc0 = __smlald(x02, __sxtb16(wa), acc0);
            acc0 = __smlald(x13, ew_sxtb16_ror8(wa), acc0);
            acc1 = __smlald(x02, __sxtb16(wb), acc1);
            acc1 = __smlald(x13, ew_sxtb16_ror8(wb), acc1);
        }
        for (; i < tap_len; ++i) {
            acc0 += (int32_t)x[i] * (int32_t)w0[i];
            acc1 += (int32_t)x[i] * (int32_t)w1[i];
        }
        w0 += tap_len;
        w1 += tap_len;
    }
    *acc0_out = acc0;
    *acc1_out = acc1;
}
#endif /* EW_ARM_DSP */

void ew_fc_s16(const int16_t *const *taps, int32_t n_taps, int32_t tap_len,
               const int8_t *w, const int64_t *bias, int32_t n_out,
               const int32_t *mult, const int32_t *shift,
               const ew_fc_params *p, int16_t *out)
{
    const int32_t row_len = n_taps * tap_len;
    int32_t o = 0;
    /* documented preconditions (edgewave_rt.h), checked in debug builds */
    assert(n_taps >= 0 && tap_len >= 0 && n_out >= 0 && p != NULL);
    assert(n_taps == 0 || taps != NULL);
    assert(n_out == 0 || (mult != NULL && shift != NULL && out != NULL && (row_len == 0 || w != NULL)));
    assert(p->zp_in == 0 && p->zp_out == 0); /* 16x8: zero points 0 */
    if (n_out > 0) ew_assert_multipliers(mult, shift, n_out, 14);
#ifdef EW_ARM_DSP
    for (; o + 2 <= n_out; o += 2) {
        const int8_t *w0 = w + (int32_t)o * row_len;
        int64_t acc0, acc1;
        dot_rows2(taps, n_taps, tap_len, w0, w0 + row_len, &acc0, &acc1);
        out[o] = (int16_t)requantize_s16(add_wrap64(start(bias, o), acc0), mult[o], shift[o], p);
        out[o + 1] = (int16_t)requantize_s16(add_wrap64(start(bias, o + 1), acc1), mult[o + 1], shift[o + 1], p);
    }
#endif
    for (; o < n_out; ++o) {
        const int64_t acc = dot_row(taps, n_taps, tap_len, w + (int32_t)o * row_len);
        out[o] = (int16_t)requantize_s16(add_wrap64(start(bias, o), acc), mult[o], shift[o], p);
    }
}

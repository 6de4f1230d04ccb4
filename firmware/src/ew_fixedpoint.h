/*
 * ew_fixedpoint.h - internal: gemmlowp / TFLite fixed-point primitives and the
 * per-element arithmetic shared by the _s8 and _s16 kernels.
 *
 * The loops stay one per file and type, as in CMSIS-NN (arm_*_s8.c, arm_*_s16.c): C has no
 * generic int8_t / int16_t loop short of a body-generating macro, and reading an array of
 * int16_t pointers through void pointers would break the aliasing rules. What the _s8 and
 * _s16 loops share is this file.
 *
 * Mirrors edgewave/integer/fixedpoint.py, which mirrors tensorflow/tflite-micro
 * (kernels/internal/common.h: MultiplyByQuantizedMultiplier, double rounding as
 * TFLM builds without TFLITE_SINGLE_ROUNDING) and google/gemmlowp
 * (fixedpoint/fixedpoint.h: SaturatingRoundingDoublingHighMul, RoundingDivideByPOT).
 *
 * No undefined behaviour: where TFLM relies on int32 wrap-around the arithmetic is
 * done in uint32_t and converted back (implementation-defined, modulo 2^32 on every
 * compiler we target: GCC, Clang, Arm Compiler). Right shifts of negative values are
 * arithmetic on those compilers too, as in TFLM itself.
 */
#ifndef EW_FIXEDPOINT_H
#define EW_FIXEDPOINT_H

#include <stdint.h>

#include "edgewave_rt.h"

/* Two's-complement wrap-around int32 arithmetic. */
static inline int32_t ew_wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static inline int32_t ew_wrap_mul(int32_t a, int32_t b) { return (int32_t)((uint32_t)a * (uint32_t)b); }
/* x << s, bits shifted out are lost (0 <= s <= 31). */
static inline int32_t ew_wrap_shl(int32_t x, int32_t s) { return (int32_t)((uint32_t)x << s); }

static inline int32_t ew_min(int32_t a, int32_t b) { return a < b ? a : b; }
static inline int32_t ew_max(int32_t a, int32_t b) { return a > b ? a : b; }
static inline int32_t ew_clamp(int32_t v, int32_t lo, int32_t hi) { return ew_min(ew_max(v, lo), hi); }

/* clamp(v + zp, lo, hi) computed without overflow (exact-integer semantics, like the
 * numpy kernels; TFLM's own int32 "+ zp" could only overflow on saturated values). */
static inline int32_t ew_offset_clamp(int32_t v, int32_t zp, int32_t lo, int32_t hi)
{
    return ew_clamp(v, lo - zp, hi - zp) + zp;
}

/* gemmlowp SaturatingRoundingDoublingHighMul<int32> (ARM VQRDMULH / SQRDMULH). */
static inline int32_t ew_srdhm(int32_t a, int32_t b)
{
    int64_t ab, nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C division truncates toward zero, as gemmlowp's does. */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp RoundingDivideByPOT<int32>: x / 2^e rounded half away from zero, 0 <= e <= 31. */
static inline int32_t ew_rdbpot(int32_t x, int32_t e)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << e) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

/* tflite::MultiplyByQuantizedMultiplier(int32_t x, int32_t mult, int shift), double rounding. */
static inline int32_t ew_mbqm(int32_t x, int32_t mult, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return ew_rdbpot(ew_srdhm(ew_wrap_shl(x, left), mult), right);
}

/* tflite::MultiplyByQuantizedMultiplier(int64_t x, int32_t mult, int shift): the 16x8
 * requantization. Single rounding, multiplier reduced to 16 bits; shift <= 14. Products
 * and sums wrap modulo 2^64 and the result modulo 2^32, like the numpy kernel. */
static inline int32_t ew_mbqm64(int64_t x, int32_t mult, int32_t shift)
{
    const int32_t reduced = mult < 0x7FFF0000 ? (int32_t)((mult + (1 << 15)) >> 16) : 0x7FFF;
    const int32_t total_shift = 15 - shift; /* >= 1 */
    const uint64_t r = (uint64_t)x * (uint64_t)(int64_t)reduced + ((uint64_t)1 << (total_shift - 1));
    return (int32_t)(uint32_t)(uint64_t)((int64_t)r >> total_shift);
}

/* ---- per-element arithmetic of the elementwise kernels ---- */

static inline int32_t ew_requant_one(int32_t x, const ew_requant_params *p)
{
    return ew_offset_clamp(ew_mbqm(x - p->zp_in, p->mult, p->shift), p->zp_out, p->act_min, p->act_max);
}

static inline int32_t ew_add_one(int32_t a, int32_t b, const ew_add_params *p)
{
    const int32_t sa = ew_mbqm(ew_wrap_shl(a - p->zp_a, p->left_shift), p->mult_a, p->shift_a);
    const int32_t sb = ew_mbqm(ew_wrap_shl(b - p->zp_b, p->left_shift), p->mult_b, p->shift_b);
    const int32_t sum = ew_wrap_add(sa, sb);
    return ew_offset_clamp(ew_mbqm(sum, p->mult_out, p->shift_out), p->zp_out, p->act_min, p->act_max);
}

static inline int32_t ew_mul_one(int32_t a, int32_t b, const ew_mul_params *p)
{
    const int32_t prod = ew_wrap_mul(a - p->zp_a, b - p->zp_b);
    return ew_offset_clamp(ew_mbqm(prod, p->mult, p->shift), p->zp_out, p->act_min, p->act_max);
}

/* TFLM's average of n_taps values: (acc +- n/2) / n with C division (ties away from 0). */
static inline int32_t ew_average(int32_t acc, int32_t n)
{
    return acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
}

/* TFLite's sigmoid table (ew_sigmoid_table.c). */
extern const uint16_t ew_sigmoid_table_u16[256];

/* int16 TANH and LOGISTIC (TFLM reference_integer_ops, int16 overloads), one loop for both:
 * v = (x * input_multiplier + rounding) >> input_left_shift (the product and sum wrap like
 * TFLM's int32), the table interpolated linearly at |v| read with `frac` fraction bits
 * (`saturated` from the last entry on), then, with round = 2^(out_shift - 1),
 * result - centre + round for v >= 0 and mirror - result + round - 1 for v < 0, >> out_shift.
 * The two kernels differ only in these constants (ew_tanh_s16.c, ew_logistic_s16.c). */
static inline void ew_sigmoid_s16(const int16_t *x, int32_t n, const ew_transcendental_params *p, int16_t *out,
                                  int32_t frac, int32_t saturated, int32_t centre, int32_t mirror, int32_t out_shift)
{
    const int32_t left_shift = p->input_left_shift;
    const uint32_t rounding = left_shift > 0 ? (uint32_t)1 << (left_shift - 1) : 0u;
    const uint32_t frac_mask = ((uint32_t)1 << frac) - 1u;
    const int32_t round = 1 << (out_shift - 1);
    int32_t i;
    for (i = 0; i < n; ++i) {
        const int32_t v = (int32_t)((uint32_t)x[i] * (uint32_t)p->input_multiplier + rounding) >> left_shift;
        const uint32_t a = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
        const uint32_t h = a >> frac;
        int32_t result;
        if (h >= 255u) {
            result = saturated;
        } else {
            const int32_t ua = ew_sigmoid_table_u16[h];
            const int32_t ub = ew_sigmoid_table_u16[h + 1u];
            result = (ua << frac) + (int32_t)(a & frac_mask) * (ub - ua);
        }
        if (v >= 0) {
            result = result - centre + round;
        } else {
            result = mirror - result + round - 1;
        }
        out[i] = (int16_t)(result >> out_shift);
    }
}

#endif /* EW_FIXEDPOINT_H */

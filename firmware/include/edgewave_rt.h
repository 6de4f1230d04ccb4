/*
 * edgewave_rt.h - the edgewave C runtime: int8 and int16x8 kernels with TensorFlow
 * Lite Micro's reference integer arithmetic.
 *
 * Every kernel computes exactly (bit for bit) what the numpy kernel of the same
 * name in edgewave/integer/kernels.py computes; tests/test_c_kernels.py checks it.
 * The numbers in the parameter structs are produced by the Python ``*_params``
 * functions (edgewave.integer: fc_params, add_params, mul_params, relu_params,
 * requant_params, tanh_params, logistic_params, pool_params) and written by the C
 * emitter as constants. Each struct's fields are the int fields of the Python
 * dataclass, in the same order (FCParams' tuples of per-channel multipliers and shifts
 * become the mult/shift arrays); tests/test_c_kernels.py checks the correspondence.
 *
 * Conventions
 *   - C99, no malloc, no global state: every kernel is a pure function of its
 *     arguments (the only globals are const tables).
 *   - ``_s8`` kernels take int8 activations, ``_s16`` kernels int16 activations
 *     (the 16x8 scheme: int8 weights, int16 activations, zero points 0).
 *   - Vectors of ``n`` elements; ``n == 0`` is allowed and does nothing.
 *   - Kernels that read "taps" take ``n_taps`` pointers to vectors (typically rows
 *     of ring buffers), so that no input is copied. A tap pointer may repeat.
 *   - Elementwise kernels (add, mul, relu, requant, tanh, logistic, lut) may write
 *     in place (``out`` equal to an input); other kernels' output must not overlap
 *     their inputs.
 *   - Multipliers/shifts follow TFLite: real = mult * 2^(shift - 31), mult in
 *     [2^30, 2^31) or 0, shift in [-31, 31]; a positive shift is a left shift.
 */
#ifndef EDGEWAVE_RT_H
#define EDGEWAVE_RT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- parameter structs (mirror edgewave.integer's *Params dataclasses) ---- */

/* FCParams: input/output zero points and the fused-activation clamp.
 * The per-channel multipliers/shifts (FCParams.per_channel(n_out)) are passed as
 * arrays. int16x8: zp_in and zp_out must be 0 (and are ignored). */
typedef struct {
    int32_t zp_in;
    int32_t zp_out;
    int32_t act_min;
    int32_t act_max;
} ew_fc_params;

/* AddParams (TFLM CalculateOpDataAdd): both inputs are offset by their zero point,
 * shifted left by left_shift (20 for int8, 15 for int16), rescaled by
 * (mult_a, shift_a) / (mult_b, shift_b), summed, rescaled by (mult_out, shift_out),
 * offset by zp_out and clamped to [act_min, act_max]. */
typedef struct {
    int32_t zp_a;
    int32_t zp_b;
    int32_t zp_out;
    int32_t left_shift;
    int32_t mult_a;
    int32_t shift_a;
    int32_t mult_b;
    int32_t shift_b;
    int32_t mult_out;
    int32_t shift_out;
    int32_t act_min;
    int32_t act_max;
} ew_add_params;

/* MulParams (TFLM CalculateOpDataMul): out = clamp(zp_out + MBQM((a - zp_a)(b - zp_b),
 * mult, shift)). int16: all zero points 0. */
typedef struct {
    int32_t zp_a;
    int32_t zp_b;
    int32_t zp_out;
    int32_t mult;
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} ew_mul_params;

/* RequantParams, for RELU and QUANTIZE int->int:
 * out = clamp(zp_out + MBQM(x - zp_in, mult, shift), act_min, act_max).
 * RELU's act_min is max(type min, zp_out). */
typedef struct {
    int32_t zp_in;
    int32_t zp_out;
    int32_t mult;
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} ew_requant_params;

/* TranscendentalParams, for int16 TANH / LOGISTIC (zp_in and input_radius are 0
 * for int16 and unused): the sigmoid-table position is
 * (x * input_multiplier + 2^(input_left_shift-1)) >> input_left_shift. */
typedef struct {
    int32_t zp_in;
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t input_radius;
} ew_transcendental_params;

/* PoolParams: the fused-activation clamp of AVERAGE_POOL_2D / MAX_POOL_2D. */
typedef struct {
    int32_t act_min;
    int32_t act_max;
} ew_pool_params;

/* ---- FULLY_CONNECTED ------------------------------------------------------- */

/* out[o] = clamp(zp_out + MBQM(bias[o] + sum_k w[o][k] * (x[k] - zp_in), mult[o], shift[o]))
 * for o < n_out, where x is the concatenation of the n_taps vectors taps[t][0..tap_len).
 * w is row-major [n_out][n_taps * tap_len]; bias (int32, may be NULL) and mult/shift
 * have n_out entries (broadcast per-tensor values to n_out). The int32 accumulator
 * wraps like TFLM's. */
void ew_fc_s8(const int8_t *const *taps, int32_t n_taps, int32_t tap_len,
              const int8_t *w, const int32_t *bias, int32_t n_out,
              const int32_t *mult, const int32_t *shift,
              const ew_fc_params *p, int8_t *out);

/* 16x8: int16 inputs, int8 weights, int64 bias (may be NULL), int64 accumulator,
 * requantized by TFLM's int64 MultiplyByQuantizedMultiplier (multiplier rounded to
 * 16 bits, single rounding; shift must be <= 14), clamped to [act_min, act_max].
 * (TFLM's int32-bias 16x8 variant is not provided: emitted models use int64 bias.) */
void ew_fc_s16(const int16_t *const *taps, int32_t n_taps, int32_t tap_len,
               const int8_t *w, const int64_t *bias, int32_t n_out,
               const int32_t *mult, const int32_t *shift,
               const ew_fc_params *p, int16_t *out);

/* ---- elementwise ------------------------------------------------------------ */

void ew_add_s8(const int8_t *a, const int8_t *b, int32_t n, const ew_add_params *p, int8_t *out);
void ew_add_s16(const int16_t *a, const int16_t *b, int32_t n, const ew_add_params *p, int16_t *out);

void ew_mul_s8(const int8_t *a, const int8_t *b, int32_t n, const ew_mul_params *p, int8_t *out);
void ew_mul_s16(const int16_t *a, const int16_t *b, int32_t n, const ew_mul_params *p, int16_t *out);

/* RELU and QUANTIZE share the arithmetic; only the parameters differ. */
void ew_relu_s8(const int8_t *x, int32_t n, const ew_requant_params *p, int8_t *out);
void ew_relu_s16(const int16_t *x, int32_t n, const ew_requant_params *p, int16_t *out);
void ew_requant_s8(const int8_t *x, int32_t n, const ew_requant_params *p, int8_t *out);
void ew_requant_s16(const int16_t *x, int32_t n, const ew_requant_params *p, int16_t *out);

/* int16 TANH / LOGISTIC: TFLM's interpolated 256-entry sigmoid table (output scale
 * 2^-15, zero point 0). */
void ew_tanh_s16(const int16_t *x, int32_t n, const ew_transcendental_params *p, int16_t *out);
void ew_logistic_s16(const int16_t *x, int32_t n, const ew_transcendental_params *p, int16_t *out);

/* int8 table lookup: out[i] = lut[x[i] + 128]. int8 TANH / LOGISTIC use a table from
 * edgewave.integer.lut_s8 (lut[j] = kernel(j - 128)). */
void ew_lut_s8(const int8_t *x, int32_t n, const int8_t lut[256], int8_t *out);

/* ---- pooling over taps ------------------------------------------------------ */

/* out[c] = clamp(round(sum_t taps[t][c] / n_taps)), rounding half away from zero as
 * TFLM does ((acc +- n/2) / n with C division); n_taps >= 1. */
void ew_avgpool_s8(const int8_t *const *taps, int32_t n_taps, int32_t channels,
                   const ew_pool_params *p, int8_t *out);
void ew_avgpool_s16(const int16_t *const *taps, int32_t n_taps, int32_t channels,
                    const ew_pool_params *p, int16_t *out);

/* out[c] = clamp(max_t taps[t][c]); n_taps >= 1. */
void ew_maxpool_s8(const int8_t *const *taps, int32_t n_taps, int32_t channels,
                   const ew_pool_params *p, int8_t *out);
void ew_maxpool_s16(const int16_t *const *taps, int32_t n_taps, int32_t channels,
                    const ew_pool_params *p, int16_t *out);

/* ---- data movement ---------------------------------------------------------- */

/* CONCATENATION along the channel axis: copies srcs[i][0..lens[i]) one after the
 * other into out (raw copy: every input carries the output's quantization). */
void ew_concat_s8(const int8_t *const *srcs, const int32_t *lens, int32_t n_srcs, int8_t *out);
void ew_concat_s16(const int16_t *const *srcs, const int32_t *lens, int32_t n_srcs, int16_t *out);

/* ---- prepared fast paths ------------------------------------------------------
 *
 * The kernels below compute exactly what the kernels above compute, but take
 * constants that edgewave/emit/plan.py derives at emit time from the same
 * parameters, so that the per-sample work is a few instructions per element:
 *
 * Requantization (ew_rq): TFLM's double-rounding MultiplyByQuantizedMultiplier
 * (SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT by e = -shift >= 0)
 * plus the output zero point is, for mult in [2^30, 2^31),
 *     y = hi32(x * m2 + 2^31 + a * 2^32) >> e,   a = add + x + (x < 0 ? neg : 0)
 * with m2 = 2*mult - 2^32 (so x * m2 + x * 2^32 = 2 * x * mult), add = 2^(e-1) +
 * zp_out * 2^e (zp_out for e = 0) and neg = -1 for e >= 1 (the round-half-away-from-
 * zero correction of RoundingDivideByPOT for negative values), 0 for e = 0; the
 * high word is SMMLAR on Armv7E-M / Armv8-M. Exact whenever the result fits int32
 * (plan.py checks |add| + max|x| * mult / 2^31 < 2^31 - 4 before using it). */
typedef struct {
    int32_t m2;
    int32_t add;
    int32_t neg;
    int32_t shift;
} ew_rq;

/* Prepared FULLY_CONNECTED. Inputs are first gathered into ``xw`` as pairs of 16-bit
 * values packed in int32 words (ew_fcq_gather_*): int16 inputs in order, pairs
 * (x[2j], x[2j+1]); int8 inputs as SXTB16 makes them, for every 4 inputs
 * (x[4q], x[4q+2]) then (x[4q+1], x[4q+3]); zero padding to n_pairs words. Outputs go
 * in groups of four: ``w`` holds, for group g and pair j, four words (one per output)
 * of two int16 weights matching xw[j]; zero rows pad n_out to a multiple of 4.
 * ``chan`` holds four words per (padded) output: bias, then
 *   int8:  m2, add, shift of ew_rq with neg = -1 (bias has -zp_in * sum(w) folded in,
 *          add has zp_out folded in);
 *   int16: r, add, shift for TFLM's int64 single rounding, valid while the int64
 *          accumulator provably fits int32: y = hi32(acc * r + add * 2^32) >> shift
 *          (r = the 16-bit multiplier << k, add = 2^(shift-1)).
 * ``post`` (0 none, 1 tanh, 2 logistic) applies an elementwise function to the
 * clamped result before it is stored: int8 through ``lut`` (256 entries, index
 * y + 128), int16 through ``t16`` (see ew_t16q). */
typedef struct {
    int32_t mult;      /* input_multiplier (power-of-two case: 3 << left_shift, shift 0) */
    int32_t round;     /* 2^(shift-1), or 0 */
    int32_t shift;     /* input_left_shift */
    int32_t kind;      /* 1 tanh, 2 logistic */
} ew_t16q;

typedef struct {
    const int32_t *w;
    const int32_t *chan;
    int32_t n_out;
    int32_t n_pairs;
    int32_t act_min;
    int32_t act_max;
    const int8_t *lut;     /* int8 post function or NULL */
    const ew_t16q *t16;    /* int16 post function or NULL */
} ew_fcq;

void ew_fcq_gather_s8(const int8_t *const *taps, int32_t n_taps, int32_t tap_len, int32_t n_pairs, int32_t *xw);
void ew_fcq_gather_s16(const int16_t *const *taps, int32_t n_taps, int32_t tap_len, int32_t n_pairs, int32_t *xw);
void ew_fcq_s8(const int32_t *xw, const ew_fcq *p, int8_t *out);
void ew_fcq_s16(const int32_t *xw, const ew_fcq *p, int16_t *out);

/* Prepared ADD: each input rescaled by its ew_rq (applied to (x - zp) << left_shift,
 * zero point 0), summed, rescaled by ``out`` (zp_out folded in), clamped. */
typedef struct {
    ew_rq a;
    ew_rq b;
    ew_rq out;
    int32_t zp_a;
    int32_t zp_b;
    int32_t left_shift;
    int32_t act_min;
    int32_t act_max;
} ew_addq;

/* Prepared MUL: (a - zp_a) * (b - zp_b) rescaled by ``out`` (zp_out folded in), clamped. */
typedef struct {
    ew_rq out;
    int32_t zp_a;
    int32_t zp_b;
    int32_t act_min;
    int32_t act_max;
} ew_mulq;

void ew_addq_s8(const int8_t *a, const int8_t *b, int32_t n, const ew_addq *p, int8_t *out);
void ew_addq_s16(const int16_t *a, const int16_t *b, int32_t n, const ew_addq *p, int16_t *out);
void ew_mulq_s8(const int8_t *a, const int8_t *b, int32_t n, const ew_mulq *p, int8_t *out);
void ew_mulq_s16(const int16_t *a, const int16_t *b, int32_t n, const ew_mulq *p, int16_t *out);
/* RELU / QUANTIZE int16 with a prepared ew_rq (zp_in 0 for int16). */
void ew_requantq_s16(const int16_t *x, int32_t n, const ew_rq *q, int32_t act_min, int32_t act_max, int16_t *out);

/* int16 TANH / LOGISTIC (t->kind), the same results as ew_tanh_s16 / ew_logistic_s16,
 * valid while |x| * mult + round < 2^31 (plan.py checks). */
void ew_t16q_s16(const int16_t *x, int32_t n, const ew_t16q *t, int16_t *out);

/* ---- fixed-point primitives (out-of-line copies of the inline helpers) ---------- */

/* tflite::MultiplyByQuantizedMultiplier(int32 x, ...), gemmlowp double rounding:
 * RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << max(shift, 0), mult),
 * max(-shift, 0)); the left shift wraps like TFLM's int32 multiply. */
int32_t ew_multiply_by_quantized_multiplier(int32_t x, int32_t mult, int32_t shift);

/* tflite::MultiplyByQuantizedMultiplier(int64 x, ...): single rounding with the
 * multiplier reduced to 16 bits; shift <= 14. The result wraps to int32. */
int32_t ew_multiply_by_quantized_multiplier_int64(int64_t x, int32_t mult, int32_t shift);

#ifdef __cplusplus
}
#endif

#endif /* EDGEWAVE_RT_H */

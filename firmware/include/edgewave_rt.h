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

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
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__thumb2__) && !defined(__ARM_BIG_ENDIAN) && !defined(EW_FORCE_PORTABLE)
#include <arm_acle.h>
#define EW_RT_WIDEN_DSP 1
#endif

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
/* An int8 model's 16-bit input stage narrowed to int8. */
void ew_requant_s16_s8(const int16_t *x, int32_t n, const ew_requant_params *p, int8_t *out);

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
 * constants that edgewave/emit/pack.py derives at emit time from the same
 * parameters, so that the per-sample work is a few instructions per element:
 *
 * Requantization (ew_rq): TFLM's double-rounding MultiplyByQuantizedMultiplier
 * (SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT by e = -shift >= 0)
 * plus the output zero point is, for mult in [2^30, 2^31),
 *     y = hi32(x * mult_x2 + 2^31 + a * 2^32) >> e,   a = add + x + (x < 0 ? neg : 0)
 * with mult_x2 = 2*mult - 2^32 (so x * mult_x2 + x * 2^32 = 2 * x * mult), add = 2^(e-1) +
 * zp_out * 2^e (zp_out for e = 0) and neg = -1 for e >= 1 (the round-half-away-from-
 * zero correction of RoundingDivideByPOT for negative values), 0 for e = 0; the
 * high word is SMMLAR on Armv7E-M / Armv8-M. Exact whenever the result fits int32
 * (pack.py checks |add| + max|x| * mult / 2^31 < 2^31 - 4 before using it). */
typedef struct {
    int32_t mult_x2; /* 2 * mult - 2^32: twice the multiplier, wrapped to int32 */
    int32_t add;
    int32_t neg;
    int32_t shift;
} ew_rq;

/* Prepared FULLY_CONNECTED.
 *
 * Inputs: int16 models read the input vector itself as pairs (x[2j], x[2j+1]), from a
 * 4-byte-aligned buffer of 2 * n_pairs values: a ring row or scratch slot when the input
 * is one such vector (edgewave/emit/allocate.py checks the alignment), otherwise the taps concatenated and
 * zero-padded into a buffer the caller aligns (the generated code copies them with
 * fixed-size memcpy). int8 models first widen the inputs into int32 words of two 16-bit
 * values as SXTB16 makes them: for every 4 inputs (x[4q], x[4q+2]) then (x[4q+1], x[4q+3]);
 * zero padding to n_pairs words (ew_gather_s8, or ew_widen4_s8 inline).
 * n_pairs is even and >= 2.
 *
 * Outputs go in groups of four, and ``w`` holds one group after the other, each as
 *   - the four int32 biases, where the accumulators start (int8: -zp_in * sum(w) folded
 *     in, and doubled like the weights);
 *   - for each input pair j, four words (one per output of the group) of two int16
 *     weights matching the pair (int8: doubled, see below); zero rows pad the last group;
 *   - the group's requantization constants:
 *     int16: four multipliers r: TFLM's int64 single rounding with a 16-bit multiplier
 *            is y = hi32(acc * r + 2^31) (SMMULR) with r = reduced multiplier << (17 + shift),
 *            exact for shifts -17..-1 while the accumulator provably fits int32;
 *            mode EW_FCQ_WIDE (a shift below -17 in the call): r = reduced multiplier
 *            << (32 + e - 15 + shift) and y = (hi32(acc * r) + 2^(e-1)) >> e (SMMUL, then
 *            one rounding shift), e = t_shift, the same for the whole call;
 *     int8:  per output (mult, add, shift): the accumulator is twice TFLM's (pack.py
 *            checks it still fits int32), and MultiplyByQuantizedMultiplier + zp_out is
 *            hi32(acc * mult + 2^31 + (add + (acc < 0 ? -1 : 0)) * 2^32) >> shift with add
 *            as in ew_rq (the ew_rq form with the doubling done by the weights).
 *
 * ``mode`` (EW_FCQ_*) picks what follows the requantization: a clamp to the full type
 * range (SSAT), to [0, 32767] (int16 RELU: USAT), to [act_min, act_max], or the clamp
 * to the full range followed by an elementwise function: int16 TANH / LOGISTIC, whose
 * table input (y * mult + round) >> shift is computed as hi32((y << t_shift) * t_mult + 2^31)
 * (see ew_fast.h), or an int8 table ``lut`` (256 entries, index y + 128; plan.py folds
 * any narrower fused-activation clamp into the table). */
enum {
    EW_FCQ_SAT = 0,
    EW_FCQ_CLAMP = 1,
    EW_FCQ_USAT = 2,
    EW_FCQ_TANH = 3,
    EW_FCQ_LOGISTIC = 4,
    EW_FCQ_LUT = 5,
    EW_FCQ_WIDE = 6
};

typedef struct {
    int32_t mult;      /* input_multiplier (power-of-two case: 3 << left_shift, shift 0) */
    int32_t round;     /* 2^(shift-1), or 0 */
    int32_t shift;     /* input_left_shift */
    int32_t kind;      /* 1 tanh, 2 logistic */
} ew_t16q;

typedef struct {
    const int32_t *w;
    int32_t n_out;
    int32_t n_pairs;
    int32_t mode;
    int32_t act_min;
    int32_t act_max;
    int32_t t_shift;
    int32_t t_mult;
    const int8_t *lut;
} ew_fcq;

/* A gated unit: FULLY_CONNECTED -> f, FULLY_CONNECTED -> g over the same inputs, then
 * MUL(f, g), in one pass. Each group of four outputs is (a[c], a[c+1], b[c], b[c+1]) of
 * the two fully-connected layers (laid out as above), and yields out[c], out[c+1]: both
 * requantized and clamped to the full range (their fused activation must be NONE), a
 * through f and b through g, multiplied and requantized by (rq_mult, add, shift) (ew_rq, neg
 * -1, MUL's zp_out folded in), clamped to the full range (MUL without activation).
 * int16: f and g are TANH / LOGISTIC (``mode`` EW_GATE_*) with their table input scaling
 * (as t_mult of ew_fcq, t_shift 16); int8: ``lut_a`` / ``lut_b`` (256 entries, index y + 128)
 * give 2 (f(y) - zp_a) and g(y) - zp_b, the MUL's inputs less their zero points, the first
 * doubled so that (rq_mult, add, shift) take the doubled form of the int8 requantization above
 * (rq_mult is then the multiplier itself; int16: ew_rq's mult_x2). */
enum {
    EW_GATE_TANH_LOGISTIC = 0,
    EW_GATE_TANH_TANH = 1,
    EW_GATE_LOGISTIC_LOGISTIC = 2
};

typedef struct {
    const int32_t *w;
    int32_t n_out;
    int32_t n_pairs;
    int32_t mode;
    int32_t a_mult;
    int32_t b_mult;
    const int16_t *lut_a;
    const int16_t *lut_b;
    int32_t rq_mult; /* int16: 2 * mult - 2^32 (ew_rq's mult_x2); int8: mult */
    int32_t add;
    int32_t shift;
} ew_gateq;

/* The gated unit of an int8 model's 16-bit input stage: both fully-connected layers read the
 * int16 input stage (the int16x8 weight stream and multipliers r of ew_gateq), each int16
 * output is narrowed to int8 as QUANTIZE does (ew_rq after a left shift ``pre_a`` / ``pre_b``,
 * the full int8 range), and from there on it is the int8 gated unit: ``lut_a`` / ``lut_b`` and
 * (rq_mult, add, shift) as in ew_gateq's int8 form. */
typedef struct {
    const int32_t *w;
    int32_t n_out;
    int32_t n_pairs;
    int32_t mode;
    ew_rq narrow_a;
    ew_rq narrow_b;
    int32_t pre_a;
    int32_t pre_b;
    const int16_t *lut_a;
    const int16_t *lut_b;
    int32_t rq_mult;
    int32_t add;
    int32_t shift;
} ew_gateq16x8;

/* One input of a prepared ADD: TFLM's MultiplyByQuantizedMultiplier((x - zp) << left_shift,
 * mult, -e) for a stored value x is
 *     smmlar((x - zp) << sh, mult, c + (x < zp ? neg : 0)) >> e,   sh = left_shift + 1,
 * with c = 2^(e-1), neg = -1 for e >= 1 and c = neg = 0 for e = 0: SaturatingRounding-
 * DoublingHighMul(d << left_shift, mult) is hi32((d << (left_shift + 1)) * mult + 2^31)
 * exactly and has the sign of d. A multiplier of exactly 1/2 (mult 2^30, e 0: the input
 * with the larger scale) is the exact d << (left_shift - 1). */
typedef struct {
    int32_t zp;
    int32_t sh;
    int32_t mult;
    int32_t c;
    int32_t neg;
    int32_t e;
} ew_addin;

/* FULLY_CONNECTED whose only reader is an ADD with another vector: out[o] = ADD(y[o],
 * other[o]) with y the fully-connected output (requantized as in ew_fcq, clamped to
 * [fc_min, fc_max]); each input of the ADD is rescaled (ew_addin), the sum is rescaled
 * by (rq_mult, add, shift) (ew_rq, neg -1, zp_out folded in) and clamped to [act_min, act_max].
 * int16 (zero points 0): ``f`` and ``o`` rescale y and other; ``mode`` EW_ADDFC_HALVE_O:
 * f has e >= 1, o is an exact halving, both clamps are the full type range;
 * EW_ADDFC_HALVE_F: the same with f and o swapped; EW_ADDFC_HALVE_BOTH: both inputs are
 * exact halvings (equal scales, which int16's power-of-two scales make common), any clamps;
 * EW_ADDFC_ANY: anything.
 * int8: the rescaled y comes from ``lut_f`` (256 entries, index y + 128, for y clamped
 * to the full range; the layer's own clamp is folded in); EW_ADDFC_HALVE_O: other is
 * an exact halving, (other - o.zp) << 19, whose -(o.zp << 19) is folded into lut_f, and
 * the output clamp is the full range; EW_ADDFC_ANY: the rescaled other comes from
 * ``lut_o``, clamped to [act_min, act_max]. Both tables and the halving are doubled, and
 * (rq_mult, add, shift) take the doubled sum as the int8 requantization above does (rq_mult
 * is then the multiplier itself; int16: ew_rq's mult_x2). */
enum {
    EW_ADDFC_HALVE_O = 0,
    EW_ADDFC_HALVE_F = 1,
    EW_ADDFC_ANY = 2,
    EW_ADDFC_HALVE_BOTH = 3 /* int16 only */
};

typedef struct {
    const int32_t *w;
    int32_t n_out;
    int32_t n_pairs;
    int32_t mode;
    int32_t fc_min;
    int32_t fc_max;
    ew_addin f;
    ew_addin o;
    const int32_t *lut_f;
    const int32_t *lut_o;
    int32_t rq_mult; /* int16: 2 * mult - 2^32 (ew_rq's mult_x2); int8: mult */
    int32_t add;
    int32_t shift;
    int32_t act_min;
    int32_t act_max;
} ew_addfcq;

void ew_gather_s8(const int8_t *const *taps, int32_t n_taps, int32_t tap_len, int32_t n_pairs, int32_t *xw);

/* Each kernel dispatches on p->mode; the per-mode entry points below do the same work
 * without the dispatch, and a program that calls only them links only what it uses. */
void ew_fcq_s8(const int32_t *xw, const ew_fcq *p, int8_t *out);
void ew_fcq_s16(const int16_t *x, const ew_fcq *p, int16_t *out);
void ew_gateq_s8(const int32_t *xw, const ew_gateq *p, int8_t *out);
void ew_gateq_s16_s8(const int16_t *x, const ew_gateq16x8 *p, int8_t *out);
void ew_gateq_s16(const int16_t *x, const ew_gateq *p, int16_t *out);
void ew_addfcq_s8(const int32_t *xw, const ew_addfcq *p, const int8_t *other, int8_t *out);
void ew_addfcq_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out);
/* The same, also storing the fully-connected output y (clamped) to y_out, for when other
 * ops read it too. */
void ew_addfcq_y_s8(const int32_t *xw, const ew_addfcq *p, const int8_t *other, int8_t *out, int8_t *y_out);
void ew_addfcq_y_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out, int16_t *y_out);

void ew_fcq_sat_s8(const int32_t *xw, const ew_fcq *p, int8_t *out);
void ew_fcq_clamp_s8(const int32_t *xw, const ew_fcq *p, int8_t *out);
void ew_fcq_lut_s8(const int32_t *xw, const ew_fcq *p, int8_t *out);
void ew_fcq_sat_s16(const int16_t *x, const ew_fcq *p, int16_t *out);
void ew_fcq_clamp_s16(const int16_t *x, const ew_fcq *p, int16_t *out);
void ew_fcq_usat_s16(const int16_t *x, const ew_fcq *p, int16_t *out);
void ew_fcq_tanh_s16(const int16_t *x, const ew_fcq *p, int16_t *out);
void ew_fcq_logistic_s16(const int16_t *x, const ew_fcq *p, int16_t *out);
void ew_fcq_wide_s16(const int16_t *x, const ew_fcq *p, int16_t *out);
void ew_gateq_tl_s16(const int16_t *x, const ew_gateq *p, int16_t *out);
void ew_gateq_tt_s16(const int16_t *x, const ew_gateq *p, int16_t *out);
void ew_gateq_ll_s16(const int16_t *x, const ew_gateq *p, int16_t *out);
void ew_addfcq_halve_o_s8(const int32_t *xw, const ew_addfcq *p, const int8_t *other, int8_t *out);
void ew_addfcq_any_s8(const int32_t *xw, const ew_addfcq *p, const int8_t *other, int8_t *out);
void ew_addfcq_y_halve_o_s8(const int32_t *xw, const ew_addfcq *p, const int8_t *other, int8_t *out, int8_t *y_out);
void ew_addfcq_y_any_s8(const int32_t *xw, const ew_addfcq *p, const int8_t *other, int8_t *out, int8_t *y_out);
void ew_addfcq_halve_o_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out);
void ew_addfcq_halve_f_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out);
void ew_addfcq_any_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out);
void ew_addfcq_halve_both_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out);
void ew_addfcq_y_halve_o_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out, int16_t *y_out);
void ew_addfcq_y_halve_f_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out, int16_t *y_out);
void ew_addfcq_y_any_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out, int16_t *y_out);
void ew_addfcq_y_halve_both_s16(const int16_t *x, const ew_addfcq *p, const int16_t *other, int16_t *out,
                                int16_t *y_out);

/* For generated code: a pointer the emitter knows to be 4-byte aligned, so that the
 * compiler may copy from it with LDM / LDRD. */
#if defined(__GNUC__)
#define EW_ALIGNED4(p) __builtin_assume_aligned((p), 4)
#else
#define EW_ALIGNED4(p) ((const void *)(p))
#endif

/* For generated code: 4 int8 inputs widened into the two words of the int8 input layout
 * above, (x[0], x[2]) and (x[1], x[3]), what ew_gather_s8 does; inline, so that a layer
 * whose taps the emitter knows costs a few instructions per 4 inputs and no call. */
static inline void ew_widen4_s8(int32_t *dst, const int8_t *src)
{
#ifdef EW_RT_WIDEN_DSP
    int32_t v, odd;
    memcpy(&v, src, sizeof v); /* one LDR: Armv7E-M / Armv8-M load unaligned words */
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(odd) : "r"(v)); /* GCC would not fold the rotation */
    dst[0] = __sxtb16(v);
    dst[1] = odd;
#else
    dst[0] = (int32_t)(((uint32_t)(int32_t)src[2] << 16) | ((uint32_t)(int32_t)src[0] & 0xFFFFu));
    dst[1] = (int32_t)(((uint32_t)(int32_t)src[3] << 16) | ((uint32_t)(int32_t)src[1] & 0xFFFFu));
#endif
}


/* Prepared ADD: each input rescaled as an ew_addin, summed, rescaled by (mult_x2, add, shift)
 * (ew_rq, neg -1, zp_out folded in), clamped to [act_min, act_max]. ``mode``
 * EW_ADDQ_HALVE_B: b is an exact halving and a has e >= 1, the clamp is the full range
 * (int8: b's -(b.zp << 19) is folded into a.c); EW_ADDQ_HALVE_A: the same with a and b
 * swapped; EW_ADDQ_ANY: anything. int16: zero points 0. */
enum {
    EW_ADDQ_HALVE_B = 0,
    EW_ADDQ_HALVE_A = 1,
    EW_ADDQ_ANY = 2
};

typedef struct {
    ew_addin a;
    ew_addin b;
    int32_t mode;
    int32_t mult_x2; /* as in ew_rq */
    int32_t add;
    int32_t shift;
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
/* RELU / QUANTIZE int16 with a prepared ew_rq applied to x << pre (zp_in 0 for int16):
 * a multiplier >= 1 (shift > 0) is TFLM's left shift first, then shift 0 (pre = shift). */
void ew_requantq_s16(const int16_t *x, int32_t n, const ew_rq *q, int32_t pre, int32_t act_min, int32_t act_max, int16_t *out);
void ew_requantq_s16_s8(const int16_t *x, int32_t n, const ew_rq *q, int32_t pre, int32_t act_min, int32_t act_max, int8_t *out);

/* int16 TANH / LOGISTIC (t->kind), the same results as ew_tanh_s16 / ew_logistic_s16,
 * valid while |x| * mult + round < 2^31 (pack.py checks). */
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

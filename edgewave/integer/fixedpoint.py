"""gemmlowp / TFLite fixed-point primitives, vectorized, with C int32 semantics.

Every value is carried in int64 numpy arrays and wrapped back to the int32 range
where the C code would wrap, so results equal the C reference bit for bit.
Sources mirrored (tensorflow/tflite-micro, google/gemmlowp):
``kernels/internal/common.{h,cc}`` (MultiplyByQuantizedMultiplier, double rounding:
TFLM does not define TFLITE_SINGLE_ROUNDING), ``kernels/internal/quantization_util.cc``
(QuantizeMultiplier, CalculateInputRadius, CheckedLog2) and ``fixedpoint/fixedpoint.h``
(SaturatingRoundingDoublingHighMul, RoundingDivideByPOT, exp/tanh/logistic).
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def wrap_int32(x) -> np.ndarray:
    """Two's-complement wrap to int32 (what a C int32 store does), kept as int64."""
    x = np.asarray(x, dtype=np.int64)
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _trunc_div_pow2(x: np.ndarray, bits: int) -> np.ndarray:
    """C integer division by 2**bits (rounds toward zero), for int64 arrays."""
    return np.where(x >= 0, x >> bits, -((-x) >> bits))


def tflite_round(x):
    """TfLiteRound / std::round: half away from zero (numpy rounds half to even).

    Works in the input's own precision without adding 0.5 first, which would round
    0.49999997f up in float32.
    """
    x = np.asarray(x)
    a = np.abs(x)
    whole = np.floor(a)
    return np.sign(x) * (whole + (a - whole >= 0.5))


# -- gemmlowp scalar primitives on int32 -------------------------------------------


def saturating_rounding_doubling_high_mul(a, b) -> np.ndarray:
    """gemmlowp::SaturatingRoundingDoublingHighMul<int32> (ARM VQRDMULH)."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    ab = a * b  # |a*b| <= 2**62: exact in int64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = _trunc_div_pow2(ab + nudge, 31)
    return np.where((a == b) & (a == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    """gemmlowp::RoundingDivideByPOT<int32>: arithmetic shift right, ties away from zero."""
    x = np.asarray(x, np.int64)
    exponent = np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def saturating_rounding_multiply_by_pot(x, exponent: int) -> np.ndarray:
    """gemmlowp::SaturatingRoundingMultiplyByPOT<exponent> on int32 raw values."""
    x = np.asarray(x, np.int64)
    if exponent == 0:
        return x
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    shifted = wrap_int32(x << exponent)
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, shifted))


def rounding_half_sum(a, b) -> np.ndarray:
    """gemmlowp::RoundingHalfSum<int32>: (a + b) / 2 rounded, ties away from zero."""
    s = np.asarray(a, np.int64) + np.asarray(b, np.int64)
    s = s + np.where(s >= 0, 1, -1)
    return _trunc_div_pow2(s, 1)


# -- requantization ------------------------------------------------------------------


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier: real = multiplier * 2**(shift - 31), multiplier in [2**30, 2**31)."""
    real_multiplier = float(real_multiplier)
    if real_multiplier == 0.0:
        return 0, 0
    q, shift = math.frexp(real_multiplier)
    q_fixed = int(tflite_round(np.float64(q * (1 << 31))))
    if q_fixed > (1 << 31):
        raise ValueError(f"QuantizeMultiplier({real_multiplier}) overflowed")
    if q_fixed == (1 << 31):  # q rounded up to 1.0: renormalize
        q_fixed //= 2
        shift += 1
    if shift < -31:  # TFLM flushes multipliers below ~2**-31 to zero
        shift, q_fixed = 0, 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one(real_multiplier: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplierSmallerThanOneExp; TFLM aborts (TFLITE_CHECK) outside (0, 1)."""
    if not 0.0 < real_multiplier < 1.0:
        raise ValueError(f"multiplier {real_multiplier!r} must lie in (0, 1); TFLM would abort here")
    return quantize_multiplier(real_multiplier)


def multiply_by_quantized_multiplier(x, multiplier, shift) -> np.ndarray:
    """tflite::MultiplyByQuantizedMultiplier(int32 x, ...), double rounding.

    ``multiplier``/``shift`` may be arrays broadcasting against ``x`` (per channel).
    """
    x = np.asarray(x, np.int64)
    shift = np.asarray(shift, np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(wrap_int32(x << left), multiplier), right
    )


def multiply_by_quantized_multiplier_int64(x, multiplier, shift) -> np.ndarray:
    """tflite::MultiplyByQuantizedMultiplier(int64 x, ...), used by 16x8 with int64 bias.

    This overload is single-rounding with the multiplier reduced to 16 bits, even in
    double-rounding builds: ``(x * round(m / 2**16) + 2**(14 - shift)) >> (15 - shift)``,
    the result truncated to int32.
    """
    x = np.asarray(x, np.int64)
    m = np.asarray(multiplier, np.int64)
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    total_shift = 15 - np.asarray(shift, np.int64)
    return wrap_int32((x * reduced + (np.int64(1) << (total_shift - 1))) >> total_shift)


def calculate_input_radius(input_integer_bits: int, input_left_shift: int, total_signed_bits: int = 31) -> int:
    """tflite::CalculateInputRadius: largest |input| that does not saturate after rescaling."""
    # (2**ib - 1) * 2**(tsb - ib) / 2**shift is exact in double, so ldexp equals the C expression.
    return math.floor(math.ldexp((1 << input_integer_bits) - 1, total_signed_bits - input_integer_bits - input_left_shift))


def checked_log2(x: float) -> tuple[bool, int]:
    """tflite::CheckedLog2 in float32: (is x a power of two within 1e-3 in log2, rounded log2)."""
    x_log2 = np.float32(np.log(np.float32(x))) * (np.float32(1.0) / np.float32(np.log(np.float32(2.0))))
    rounded = np.float32(tflite_round(np.float32(x_log2)))
    return bool(abs(np.float32(x_log2 - rounded)) < np.float32(1e-3)), int(rounded)


# -- gemmlowp transcendental functions on FixedPoint<int32, integer_bits> raws ----------


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """gemmlowp exp(x) for x in [-1/4, 0), Q0.31 in and out (Taylor series around -1/8)."""
    srdhm = saturating_rounding_doubling_high_mul
    constant_term = 1895147668  # exp(-1/8)
    constant_1_over_3 = 715827883
    x = wrap_int32(a + (1 << 28))  # a + 1/8
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(wrap_int32(srdhm(wrap_int32(x4_over_4 + x3), constant_1_over_3) + x2), 1)
    return wrap_int32(constant_term + srdhm(constant_term, wrap_int32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, integer_bits: int) -> np.ndarray:
    """gemmlowp::exp_on_negative_values: Q(integer_bits) input <= 0 -> Q0.31 exp(a)."""
    a = np.asarray(a, np.int64)
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    a_mod_quarter_minus_one_quarter = wrap_int32((a & (one_quarter - 1)) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits)  # Rescale<0>
    )
    remainder = wrap_int32(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            bit = (remainder >> (frac_bits + exponent)) & 1
            result = np.where(bit != 0, saturating_rounding_doubling_high_mul(result, multiplier), result)
    if integer_bits > 5:
        result = np.where(a < -(1 << (36 - integer_bits)), 0, result)
    return np.where(a == 0, INT32_MAX, result)


def _newton_raphson_reciprocal_q2(half_denominator: np.ndarray) -> np.ndarray:
    """Shared core of gemmlowp's 1/(1+x) and (1-x)/(1+x): Q2.29 estimate of 1/half_denominator."""
    srdhm = saturating_rounding_doubling_high_mul
    one_q2 = 1 << 29
    x = wrap_int32(1515870810 + srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 * d
    for _ in range(3):
        one_minus_half_denominator_times_x = wrap_int32(one_q2 - srdhm(half_denominator, x))
        x = wrap_int32(x + saturating_rounding_multiply_by_pot(srdhm(x, one_minus_half_denominator_times_x), 2))
    return x


def one_minus_x_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    x = _newton_raphson_reciprocal_q2(rounding_half_sum(a, INT32_MAX))
    return saturating_rounding_multiply_by_pot(wrap_int32(x - (1 << 29)), 2)


def one_over_one_plus_x_for_x_in_0_1(a) -> np.ndarray:
    x = _newton_raphson_reciprocal_q2(rounding_half_sum(a, INT32_MAX))
    return saturating_rounding_multiply_by_pot(x, 1)  # Rescale<0>(ExactMulByPot<-1>(x))


def fixedpoint_tanh(a, integer_bits: int) -> np.ndarray:
    """gemmlowp::tanh: Q(integer_bits) raw int32 -> Q0.31 raw."""
    a = np.asarray(a, np.int64)
    negative = a < 0
    n = np.where(negative, a, wrap_int32(-a))  # -|a|
    t = one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, integer_bits + 1))  # exp(2n)
    return np.where(a == 0, 0, np.where(negative, wrap_int32(-t), t))


def fixedpoint_logistic(a, integer_bits: int) -> np.ndarray:
    """gemmlowp::logistic: Q(integer_bits) raw int32 -> Q0.31 raw."""
    a = np.asarray(a, np.int64)
    positive = a > 0
    abs_input = np.where(positive, a, wrap_int32(-a))
    if_positive = one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap_int32(-abs_input), integer_bits))
    if_negative = wrap_int32(INT32_MAX - if_positive)
    return np.where(a == 0, 1 << 30, np.where(positive, if_positive, if_negative))

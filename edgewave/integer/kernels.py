"""TFLite Micro's reference integer kernels (int8 and int16x8) in numpy.

Each kernel comes in two steps, as in TFLM: ``*_params`` is Prepare (from the
tensors' scales and zero points to a small frozen dataclass of plain Python ints:
multipliers, shifts, offsets, clamp bounds), ``*_eval`` is Eval (integer inputs +
that params object -> integer output). The C runtime in ``firmware/`` takes the very
same numbers as constants (its parameter structs mirror these dataclasses) and must
compute exactly what the ``*_eval`` functions compute. The plain functions
(``fully_connected``, ``add``, ...) call both steps and return the quantized output
with the input's dtype. Where TFLM's Prepare would fail, or where
TFLM would silently compute something other than the tensors' meaning, a
``ValueError`` says so instead. Mirrored files, in tensorflow/tflite-micro:
``micro/kernels/{fully_connected_common,add_common,mul_common,tanh,logistic_common,
pooling_common,pad,concatenation}.cc`` and
``kernels/internal/reference/{integer_ops/,}{fully_connected,add,mul,tanh,logistic,pooling}.h``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from edgewave.integer import fixedpoint as fp
from edgewave.integer.sigmoid_table import SIGMOID_TABLE_UINT16


@dataclass(frozen=True)
class QuantParams:
    """Per-tensor affine quantization: real = scale * (q - zero_point).

    ``scale`` is rounded to float32 because that is what the flatbuffer stores and
    what TFLM's Prepare reads.
    """

    scale: float
    zero_point: int = 0

    def __post_init__(self):
        object.__setattr__(self, "scale", float(np.float32(self.scale)))
        object.__setattr__(self, "zero_point", int(self.zero_point))


def _limits(dtype) -> tuple[int, int]:
    dtype = np.dtype(dtype)
    if dtype not in (np.int8, np.int16):
        raise ValueError(f"integer kernels take int8 or int16 tensors, got {dtype}")
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def activation_range(activation: str, out_q: QuantParams, dtype) -> tuple[int, int]:
    """tflite::CalculateActivationRangeQuantized: clamp bounds of a fused activation."""
    qmin, qmax = _limits(dtype)
    scale = np.float32(out_q.scale)

    def quantize(real: float) -> int:  # zero_point + TfLiteRound(f / scale), in float32
        return out_q.zero_point + int(fp.tflite_round(np.float32(real) / scale))

    activation = activation.upper()
    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise ValueError(f"unsupported fused activation {activation!r}")


def _require_zero_points_zero(kernel: str, **qs: QuantParams) -> None:
    bad = [name for name, q in qs.items() if q.zero_point != 0]
    if bad:
        raise ValueError(f"int16 {kernel} needs zero point 0 (got nonzero for {', '.join(bad)})")


def _multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier, refusing left shifts above 31 (a real multiplier >= 2**31),
    where ``x << shift`` in MultiplyByQuantizedMultiplier would shift every bit out."""
    mult, shift = fp.quantize_multiplier(real)
    if shift > 31:
        raise ValueError(f"requantization multiplier {real!r} is too large (>= 2**31)")
    return int(mult), int(shift)


def _multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    mult, shift = fp.quantize_multiplier_smaller_than_one(real)
    return int(mult), int(shift)


# -- FULLY_CONNECTED ---------------------------------------------------------------


@dataclass(frozen=True)
class FCParams:
    """Prepare of FULLY_CONNECTED (C: ``ew_fc_params`` + the ``mult``/``shift`` arrays).

    ``multipliers``/``shifts`` hold one entry per output channel (per-channel weights)
    or a single entry for the whole tensor; ``per_channel(n_out)`` broadcasts them to
    the per-channel arrays the C kernel takes. int16x8: ``zp_in``/``zp_out`` are 0.
    """

    zp_in: int
    zp_out: int
    act_min: int
    act_max: int
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]

    def per_channel(self, n_out: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if len(self.multipliers) == n_out:
            return self.multipliers, self.shifts
        if len(self.multipliers) != 1:
            raise ValueError(f"{len(self.multipliers)} weight scales for {n_out} output channels")
        return self.multipliers * n_out, self.shifts * n_out


def fc_params(x_q: QuantParams, weight_scales, out_q: QuantParams, activation: str = "NONE", dtype="int8",
              as_conv: bool = False) -> FCParams:
    """More than one weight scale selects TFLM's per-channel path (multiplier from
    double(s_in)·double(s_w)/double(s_out)); one scale the per-tensor path (multiplier
    from the float32 product s_in·s_w). ``as_conv``: the layer runs as a 1x1 CONV_2D, whose
    Prepare takes the per-channel path for one scale too."""
    lo, hi = activation_range(activation, out_q, dtype)
    if np.dtype(dtype) == np.int16:
        _require_zero_points_zero("FULLY_CONNECTED", input=x_q, output=out_q)
    weight_scales = np.atleast_1d(np.asarray(weight_scales, np.float32))
    if weight_scales.size > 1 or as_conv:
        real = [float(np.float64(x_q.scale) * np.float64(s) / np.float64(out_q.scale)) for s in weight_scales]
    else:  # GetQuantizedConvolutionMultipler: the product is formed in float32
        real = [float(np.float64(np.float32(x_q.scale) * weight_scales[0]) / np.float64(out_q.scale))]
    mult, shift = zip(*(_multiplier(r) for r in real))
    return FCParams(x_q.zero_point, out_q.zero_point, lo, hi, tuple(mult), tuple(shift))


def fc_eval(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, p: FCParams) -> np.ndarray:
    """``x [..., K]`` times int8 ``weights [N, K]`` (+ bias) -> ``[..., N]``, requantized."""
    n_out, depth = weights.shape
    if x.shape[-1] != depth:
        raise ValueError(f"input depth {x.shape[-1]} != weights depth {depth}")
    mult, shift = (np.array(v, np.int64) for v in p.per_channel(n_out))
    xs = x.reshape(-1, depth).astype(np.int64)
    w = weights.astype(np.int64)
    if x.dtype == np.int8:
        acc = (xs - p.zp_in) @ w.T
        if bias is not None:
            acc = acc + np.asarray(bias, np.int64)
        out = fp.multiply_by_quantized_multiplier(fp.wrap_int32(acc), mult, shift) + p.zp_out
    elif x.dtype == np.int16:
        acc = xs @ w.T
        if bias is not None:
            acc = acc + np.asarray(bias, np.int64)
        if bias is not None and np.asarray(bias).dtype == np.int32:
            # TFLM's int32-bias 16x8 variant accumulates in int32 and uses the int32 overload.
            out = fp.multiply_by_quantized_multiplier(fp.wrap_int32(acc), mult, shift)
        else:
            if shift.max(initial=0) > 14:  # (1 << (14 - shift)) would be undefined in C
                raise ValueError(f"int16x8 FULLY_CONNECTED needs shifts <= 14 (TFLM expects < 8), got {int(shift.max())}")
            out = fp.multiply_by_quantized_multiplier_int64(acc, mult, shift)
    else:
        _limits(x.dtype)
    return np.clip(out, p.act_min, p.act_max).astype(x.dtype).reshape(*x.shape[:-1], n_out)


def fc_dot_exact(x: np.ndarray, weights_t: np.ndarray, zp_in: int = 0) -> np.ndarray:
    """``Σ w·(x - zp_in)`` for integer ``x [M, K]`` and int8 weights given transposed as float64
    ``weights_t [K, N]``: the int64 accumulators of FULLY_CONNECTED, by BLAS in float64.

    Exact: every product is below 2**23 in magnitude (|x| <= 32768, |w| <= 127), so every partial
    sum in any order is an integer below 2**53 for K < 2**30 (checked), and float64 adds such
    integers without rounding. The zero point is taken off afterwards as ``zp_in · Σ w`` per
    output channel, in int64."""
    depth = weights_t.shape[0]
    if depth >= 1 << 30:
        raise ValueError(f"depth {depth} is too large for an exact float64 accumulation")
    acc = np.matmul(np.asarray(x, np.float64), weights_t).astype(np.int64)
    if zp_in:
        acc -= zp_in * weights_t.sum(axis=0).astype(np.int64)
    return acc


def fc_requantize(acc: np.ndarray, bias: np.ndarray | None, p: FCParams, in_dtype) -> np.ndarray:
    """The rest of ``fc_eval`` after the dot products: int64 accumulators ``acc [..., N]``
    (``Σ w·(x - zp_in)``, unwrapped) + bias, requantized and clamped exactly as ``fc_eval``
    does for an input of ``in_dtype`` (the output has that dtype)."""
    n_out = acc.shape[-1]
    mult, shift = (np.array(v, np.int64) for v in p.per_channel(n_out))
    in_dtype = np.dtype(in_dtype)
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    if in_dtype == np.int8:
        out = fp.multiply_by_quantized_multiplier(fp.wrap_int32(acc), mult, shift) + p.zp_out
    elif in_dtype == np.int16:
        if bias is not None and np.asarray(bias).dtype == np.int32:
            out = fp.multiply_by_quantized_multiplier(fp.wrap_int32(acc), mult, shift)
        else:
            if shift.max(initial=0) > 14:
                raise ValueError(f"int16x8 FULLY_CONNECTED needs shifts <= 14 (TFLM expects < 8), got {int(shift.max())}")
            out = fp.multiply_by_quantized_multiplier_int64(acc, mult, shift)
    else:
        _limits(in_dtype)
    return np.clip(out, p.act_min, p.act_max).astype(in_dtype)


def fully_connected(
    x: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray | None,
    x_q: QuantParams,
    weight_scales,
    out_q: QuantParams,
    activation: str = "NONE",
    as_conv: bool = False,
) -> np.ndarray:
    """FULLY_CONNECTED: ``x [..., K]`` times symmetric int8 ``weights [N, K]`` -> ``[..., N]``.

    int8: bias int32, ``acc = bias + Σ w·(x - zp_in)`` in int32, double-rounding
    requantization, ``+ zp_out``, clamp. int16x8: zero points 0 (TFLM ignores them),
    bias int64 (or none) with an int64 accumulator, requantized by the int64
    MultiplyByQuantizedMultiplier (16-bit multiplier, single rounding); TFLM also takes
    an int32 bias, then accumulates in int32 and double-rounds (LiteRT mis-reads such
    models, so prefer int64). More than one weight scale selects TFLM's per-channel
    path (multiplier from double(s_in)·double(s_w)/double(s_out)); one scale the
    per-tensor path (multiplier from the float32 product s_in·s_w).
    """
    p = fc_params(x_q, weight_scales, out_q, activation, x.dtype, as_conv)
    return fc_eval(x, weights, bias, p)


# -- ADD / MUL ---------------------------------------------------------------------


@dataclass(frozen=True)
class AddParams:
    """Prepare of ADD (CalculateOpDataAdd; C: ``ew_add_params``)."""

    zp_a: int
    zp_b: int
    zp_out: int
    left_shift: int  # 20 (int8) or 15 (int16)
    mult_a: int
    shift_a: int
    mult_b: int
    shift_b: int
    mult_out: int
    shift_out: int
    act_min: int
    act_max: int


def add_params(a_q: QuantParams, b_q: QuantParams, out_q: QuantParams, dtype="int8", activation: str = "NONE") -> AddParams:
    lo, hi = activation_range(activation, out_q, dtype)
    left_shift = 15 if np.dtype(dtype) == np.int16 else 20
    twice_max_input_scale = 2 * float(max(np.float32(a_q.scale), np.float32(b_q.scale)))
    m_a, s_a = _multiplier_smaller_than_one(a_q.scale / twice_max_input_scale)
    m_b, s_b = _multiplier_smaller_than_one(b_q.scale / twice_max_input_scale)
    m_out, s_out = _multiplier_smaller_than_one(twice_max_input_scale / ((1 << left_shift) * out_q.scale))
    return AddParams(a_q.zero_point, b_q.zero_point, out_q.zero_point, left_shift, m_a, s_a, m_b, s_b, m_out, s_out, lo, hi)


def add_eval(a: np.ndarray, b: np.ndarray, p: AddParams) -> np.ndarray:
    if a.dtype != b.dtype:
        raise ValueError(f"ADD inputs differ in dtype: {a.dtype} vs {b.dtype}")

    def scaled(x, zp, m, s):  # MultiplyByQuantizedMultiplierSmallerThanOneExp((x - zp) << shift)
        shifted = fp.wrap_int32((x.astype(np.int64) - zp) << p.left_shift)
        return fp.multiply_by_quantized_multiplier(shifted, m, s)

    raw_sum = fp.wrap_int32(scaled(a, p.zp_a, p.mult_a, p.shift_a) + scaled(b, p.zp_b, p.mult_b, p.shift_b))
    out = fp.multiply_by_quantized_multiplier(raw_sum, p.mult_out, p.shift_out) + p.zp_out
    return np.clip(out, p.act_min, p.act_max).astype(a.dtype)


def add(
    a: np.ndarray, b: np.ndarray, a_q: QuantParams, b_q: QuantParams, out_q: QuantParams, activation: str = "NONE"
) -> np.ndarray:
    """ADD (broadcasting): both inputs shifted left by 20 (int8) or 15 (int16), rescaled to
    a common ``2·max(s_a, s_b)`` scale, summed, rescaled to the output (CalculateOpDataAdd)."""
    if a.dtype != b.dtype:
        raise ValueError(f"ADD inputs differ in dtype: {a.dtype} vs {b.dtype}")
    return add_eval(a, b, add_params(a_q, b_q, out_q, a.dtype, activation))


@dataclass(frozen=True)
class MulParams:
    """Prepare of MUL (CalculateOpDataMul; C: ``ew_mul_params``)."""

    zp_a: int
    zp_b: int
    zp_out: int
    mult: int
    shift: int
    act_min: int
    act_max: int


def mul_params(a_q: QuantParams, b_q: QuantParams, out_q: QuantParams, dtype="int8", activation: str = "NONE") -> MulParams:
    lo, hi = activation_range(activation, out_q, dtype)
    if np.dtype(dtype) == np.int16:
        _require_zero_points_zero("MUL", input1=a_q, input2=b_q, output=out_q)
    m, s = _multiplier(np.float64(a_q.scale) * np.float64(b_q.scale) / np.float64(out_q.scale))
    return MulParams(a_q.zero_point, b_q.zero_point, out_q.zero_point, m, s, lo, hi)


def mul_eval(a: np.ndarray, b: np.ndarray, p: MulParams) -> np.ndarray:
    if a.dtype != b.dtype:
        raise ValueError(f"MUL inputs differ in dtype: {a.dtype} vs {b.dtype}")
    prod = fp.wrap_int32((a.astype(np.int64) - p.zp_a) * (b.astype(np.int64) - p.zp_b))
    out = fp.multiply_by_quantized_multiplier(prod, p.mult, p.shift) + p.zp_out
    return np.clip(out, p.act_min, p.act_max).astype(a.dtype)


def mul(
    a: np.ndarray, b: np.ndarray, a_q: QuantParams, b_q: QuantParams, out_q: QuantParams, activation: str = "NONE"
) -> np.ndarray:
    """MUL (broadcasting): one multiplier ``s_a·s_b/s_out`` applied to the int32 product
    (CalculateOpDataMul + MulElementwise). int16 needs all zero points 0."""
    if a.dtype != b.dtype:
        raise ValueError(f"MUL inputs differ in dtype: {a.dtype} vs {b.dtype}")
    return mul_eval(a, b, mul_params(a_q, b_q, out_q, a.dtype, activation))


# -- TANH / LOGISTIC -----------------------------------------------------------------

TANH_INT8_OUTPUT = QuantParams(1.0 / 128, 0)
LOGISTIC_INT8_OUTPUT = QuantParams(1.0 / 256, -128)
INT16_UNIT_OUTPUT = QuantParams(1.0 / 32768, 0)


@dataclass(frozen=True)
class TranscendentalParams:
    """Prepare of TANH / LOGISTIC.

    int8 (gemmlowp fixed point; on the device a 256-entry table from ``lut_s8``):
    ``x - zp_in`` rescaled to Q4.27 by ``input_multiplier``/``input_left_shift``
    (MultiplyByQuantizedMultiplier), saturated beyond ``input_radius``.
    int16 (C: ``ew_transcendental_params``): ``zp_in`` and ``input_radius`` are 0 and
    the table index is ``(x·input_multiplier + round) >> input_left_shift``.
    """

    zp_in: int
    input_multiplier: int
    input_left_shift: int
    input_radius: int = 0


def _int8_transcendental_params(x_q: QuantParams) -> TranscendentalParams:
    """Prepare of int8 TANH/LOGISTIC: input rescaled to gemmlowp Q4.27 (4 integer bits)."""
    q, left_shift = np.frexp(np.float64(x_q.scale) * np.float64(1 << 27))
    multiplier = int(fp.wrap_int32(int(fp.tflite_round(q * np.float64(1 << 31)))))
    return TranscendentalParams(
        x_q.zero_point, multiplier, int(left_shift), int(fp.calculate_input_radius(4, int(left_shift), 31))
    )


def _int8_transcendental(x: np.ndarray, p: TranscendentalParams, function, out_bits: int, out_offset: int) -> np.ndarray:
    centered = x.astype(np.int64) - p.zp_in
    in_q4 = fp.multiply_by_quantized_multiplier(centered, p.input_multiplier, p.input_left_shift)
    out = fp.rounding_divide_by_pot(function(in_q4, 4), 31 - out_bits) + out_offset
    out = np.clip(out, -128, 127)
    return np.where(centered <= -p.input_radius, -128, np.where(centered >= p.input_radius, 127, out)).astype(np.int8)


def _int16_transcendental_params(x_q: QuantParams, out_q: QuantParams, pot_shifts: tuple[int, ...]) -> TranscendentalParams:
    """Prepare of int16 TANH/LOGISTIC: input rescaled to 1/(3·4096) per LSB for the LUT."""
    _require_zero_points_zero("TANH/LOGISTIC", input=x_q, output=out_q)
    is_pot, out_log2 = fp.checked_log2(out_q.scale)
    if not is_pot or out_log2 != -15:
        raise ValueError(f"int16 TANH/LOGISTIC need output scale 2**-15, got {out_q.scale!r}")
    is_pot, in_log2 = fp.checked_log2(x_q.scale)
    left_shift = (15 - 3) + in_log2
    if is_pot and left_shift in pot_shifts:
        return TranscendentalParams(0, 3 << left_shift, 0)  # Eval's "power of two case"
    multiplier = np.float64(x_q.scale) * 4096.0 * 3.0
    left_shift = 0
    while multiplier <= 32767.0 / 2.0 and left_shift <= 30:
        left_shift += 1
        multiplier = multiplier * 2.0
    if multiplier > fp.INT32_MAX:  # TFLM stores it in an int32
        raise ValueError(f"int16 TANH/LOGISTIC input scale {x_q.scale!r} is too large")
    return TranscendentalParams(0, int(multiplier), left_shift)


def _int16_lut_input(x: np.ndarray, p: TranscendentalParams) -> np.ndarray:
    left_shift = p.input_left_shift
    rounding = (1 << (left_shift - 1)) if left_shift > 0 else 0
    return fp.wrap_int32(x.astype(np.int64) * p.input_multiplier + rounding) >> left_shift


def tanh_params(x_q: QuantParams, out_q: QuantParams, dtype="int8") -> TranscendentalParams:
    if np.dtype(dtype) == np.int8:
        if out_q != TANH_INT8_OUTPUT:
            raise ValueError(f"int8 TANH output must be {TANH_INT8_OUTPUT}, got {out_q}")
        return _int8_transcendental_params(x_q)
    _limits(dtype)
    return _int16_transcendental_params(x_q, out_q, pot_shifts=(0, 1))


def tanh_eval(x: np.ndarray, p: TranscendentalParams) -> np.ndarray:
    if x.dtype == np.int8:
        return _int8_transcendental(x, p, fp.fixedpoint_tanh, 7, 0)
    _limits(x.dtype)
    v = _int16_lut_input(x, p)
    a = np.abs(v)
    uh = np.minimum(a >> 8, 254)  # clamp only to keep the gather in range; saturated below
    ua = SIGMOID_TABLE_UINT16[uh]
    ub = SIGMOID_TABLE_UINT16[uh + 1]
    result = np.where((a >> 8) >= 255, 0xFFFF << 8, (ua << 8) + (a & 0xFF) * (ub - ua))
    result = np.where(v >= 0, result - (1 << 23) + (1 << 7), -result + (1 << 23) + (1 << 7) - 1)
    return (result >> 8).astype(np.int16)


def tanh(x: np.ndarray, x_q: QuantParams, out_q: QuantParams) -> np.ndarray:
    """TANH. int8: gemmlowp fixed-point tanh; the result is always in 1/128 steps, zero
    point 0 (TFLM does not check the output tensor, so ``out_q`` must be exactly that).
    int16: 256-entry sigmoid table with linear interpolation; zero points 0, output scale
    2**-15; a power-of-two input scale 2**-12 or 2**-11 takes TFLM's exact path."""
    return tanh_eval(x, tanh_params(x_q, out_q, x.dtype))


def logistic_params(x_q: QuantParams, out_q: QuantParams, dtype="int8") -> TranscendentalParams:
    if np.dtype(dtype) == np.int8:
        if out_q != LOGISTIC_INT8_OUTPUT:
            raise ValueError(f"int8 LOGISTIC output must be {LOGISTIC_INT8_OUTPUT}, got {out_q}")
        return _int8_transcendental_params(x_q)
    _limits(dtype)
    return _int16_transcendental_params(x_q, out_q, pot_shifts=(0,))


def logistic_eval(x: np.ndarray, p: TranscendentalParams) -> np.ndarray:
    if x.dtype == np.int8:
        return _int8_transcendental(x, p, fp.fixedpoint_logistic, 8, -128)
    _limits(x.dtype)
    v = _int16_lut_input(x, p)
    a = np.abs(v)
    uh = np.minimum(a >> 9, 254)
    ua = SIGMOID_TABLE_UINT16[uh]
    ub = SIGMOID_TABLE_UINT16[uh + 1]
    result = np.where((a >> 9) >= 255, 0x7FFF << 10, (ua << 9) + (a & 0x1FF) * (ub - ua))
    result = np.where(v >= 0, result + (1 << 9), (1 << 25) - result + (1 << 9) - 1)
    return (result >> 10).astype(np.int16)


def logistic(x: np.ndarray, x_q: QuantParams, out_q: QuantParams) -> np.ndarray:
    """LOGISTIC. int8: gemmlowp fixed-point logistic, output 1/256 steps with zero point
    -128 (TFLM checks the zero point only). int16: sigmoid table with interpolation;
    zero points 0, output scale 2**-15; input scale 2**-12 takes the exact path."""
    return logistic_eval(x, logistic_params(x_q, out_q, x.dtype))


def lut_s8(kernel, x_q: QuantParams, out_q: QuantParams) -> np.ndarray:
    """The 256-entry table of an elementwise int8 kernel (``tanh``, ``logistic``, ``relu``,
    ``requantize``): ``lut[i] = kernel(i - 128)``, for the C ``ew_lut_s8``."""
    return kernel(np.arange(-128, 128, dtype=np.int8), x_q, out_q)


# -- pooling -------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolParams:
    """Prepare of AVERAGE_POOL_2D / MAX_POOL_2D: the fused-activation clamp (C: ``ew_pool_params``)."""

    act_min: int
    act_max: int


def pool_params(q: QuantParams, dtype="int8", activation: str = "NONE", out_q: QuantParams | None = None) -> PoolParams:
    _limits(dtype)
    out_q = q if out_q is None else out_q
    if out_q != q:  # PoolingPrepare: scales within 1e-6 and equal zero points
        if abs(out_q.scale - q.scale) > 1e-6 or out_q.zero_point != q.zero_point:
            raise ValueError("pooling needs identical input and output quantization")
    return PoolParams(*activation_range(activation, out_q, dtype))


def _pool_windows(x: np.ndarray, filter_hw, stride_hw) -> np.ndarray:
    """NHWC input -> [N, OH, OW, C, fh*fw] windows (VALID padding)."""
    _limits(x.dtype)
    fh, fw = filter_hw
    sh, sw = stride_hw
    win = np.lib.stride_tricks.sliding_window_view(x, (fh, fw), axis=(1, 2))[:, ::sh, ::sw]
    return win.reshape(*win.shape[:4], fh * fw)


def avgpool_eval(x: np.ndarray, filter_hw, stride_hw, p: PoolParams) -> np.ndarray:
    """Mean of the raw values, ties away from zero (``(acc ± n/2) / n`` with C division), clamped."""
    win = _pool_windows(x, filter_hw, stride_hw).astype(np.int64)
    n = win.shape[-1]
    acc = win.sum(axis=-1)
    num = np.where(acc > 0, acc + n // 2, acc - n // 2)
    avg = np.sign(num) * (np.abs(num) // n)  # C division truncates toward zero
    return np.clip(avg, p.act_min, p.act_max).astype(x.dtype)


def maxpool_eval(x: np.ndarray, filter_hw, stride_hw, p: PoolParams) -> np.ndarray:
    win = _pool_windows(x, filter_hw, stride_hw)
    return np.clip(win.max(axis=-1), p.act_min, p.act_max).astype(x.dtype)


def average_pool_2d(
    x: np.ndarray, q: QuantParams, filter_hw, stride_hw=(1, 1), activation: str = "NONE", out_q: QuantParams | None = None
) -> np.ndarray:
    """AVERAGE_POOL_2D, VALID padding: mean of the raw values, ties away from zero
    (``(acc ± n/2) / n`` with C division), then the fused-activation clamp."""
    return avgpool_eval(x, filter_hw, stride_hw, pool_params(q, x.dtype, activation, out_q))


def max_pool_2d(
    x: np.ndarray, q: QuantParams, filter_hw, stride_hw=(1, 1), activation: str = "NONE", out_q: QuantParams | None = None
) -> np.ndarray:
    """MAX_POOL_2D, VALID padding, then the fused-activation clamp."""
    return maxpool_eval(x, filter_hw, stride_hw, pool_params(q, x.dtype, activation, out_q))


# -- data movement -------------------------------------------------------------------


def concatenation(arrays: Sequence[np.ndarray], qs: Sequence[QuantParams], out_q: QuantParams, axis: int) -> np.ndarray:
    """CONCATENATION: TFLM copies raw values and never requantizes, so every input must
    carry exactly the output's quantization (LiteRT would requantize instead)."""
    for i, q in enumerate(qs):
        if q != out_q:
            raise ValueError(f"CONCATENATION input {i} has {q}, output has {out_q}: TFLM would copy raw values")
    return np.concatenate(arrays, axis=axis)


@dataclass(frozen=True)
class PadParams:
    """Prepare of PAD: the raw fill value."""

    value: int


def pad_params(q: QuantParams, dtype="int8") -> PadParams:
    """int8 pads with the zero point; TFLM pads int16 with raw 0 whatever the zero point."""
    _limits(dtype)
    return PadParams(q.zero_point if np.dtype(dtype) == np.int8 else 0)


def pad_eval(x: np.ndarray, paddings, p: PadParams) -> np.ndarray:
    return np.pad(x, np.asarray(paddings, np.int64), constant_values=p.value)


def pad(x: np.ndarray, paddings, q: QuantParams) -> np.ndarray:
    """PAD: int8 pads with the zero point; TFLM pads int16 with raw 0 whatever the zero point."""
    return pad_eval(x, paddings, pad_params(q, x.dtype))


# -- RELU / QUANTIZE (requantize) ------------------------------------------------------


@dataclass(frozen=True)
class RequantParams:
    """Prepare of RELU (CalculateReluOpData) and QUANTIZE int->int: ``zp_out +
    MultiplyByQuantizedMultiplier(x - zp_in, mult, shift)`` clamped to [act_min, act_max]
    (C: ``ew_requant_params``; RELU only raises ``act_min`` to the output's zero)."""

    zp_in: int
    zp_out: int
    mult: int
    shift: int
    act_min: int
    act_max: int


def _rescale_params(x_q: QuantParams, out_q: QuantParams, lo: int, hi: int) -> RequantParams:
    mult, shift = _multiplier(float(np.float64(x_q.scale) / np.float64(out_q.scale)))
    return RequantParams(x_q.zero_point, out_q.zero_point, mult, shift, lo, hi)


def relu_params(x_q: QuantParams, out_q: QuantParams, dtype="int8") -> RequantParams:
    qmin, qmax = _limits(dtype)
    if np.dtype(dtype) == np.int16:
        _require_zero_points_zero("RELU", input=x_q, output=out_q)
    return _rescale_params(x_q, out_q, max(qmin, out_q.zero_point), qmax)


def requant_params(x_q: QuantParams, out_q: QuantParams, dtype="int8") -> RequantParams:
    qmin, qmax = _limits(dtype)
    return _rescale_params(x_q, out_q, qmin, qmax)


def requant_eval(x: np.ndarray, p: RequantParams, out_dtype=None) -> np.ndarray:
    """zp_out + MultiplyByQuantizedMultiplier(x - zp_in), clamped: RELU and QUANTIZE alike."""
    _limits(x.dtype)
    out = fp.multiply_by_quantized_multiplier(x.astype(np.int64) - p.zp_in, p.mult, p.shift) + p.zp_out
    return np.clip(out, p.act_min, p.act_max).astype(out_dtype or x.dtype)


relu_eval = requant_eval


def relu(x: np.ndarray, x_q: QuantParams, out_q: QuantParams) -> np.ndarray:
    """RELU (TFLM CalculateReluOpData + ReluQuantized): rescale, then clamp below at the output's zero."""
    return requant_eval(x, relu_params(x_q, out_q, x.dtype))


def requantize(x: np.ndarray, x_q: QuantParams, out_q: QuantParams, out_dtype=None) -> np.ndarray:
    """QUANTIZE int8->int8, int16->int16 or int16->int8 (TFLM reference_ops::Requantize: the
    multiplier of s_in / s_out, clamped to the output type)."""
    out_dtype = np.dtype(out_dtype or x.dtype)
    return requant_eval(x, requant_params(x_q, out_q, out_dtype), out_dtype)

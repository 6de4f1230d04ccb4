"""Quantization: the float program + calibrated ranges -> the int8 or int16x8 program,
with parameters chosen where LiteRT and TFLM compute the same integers (see below).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..integer import QuantParams
from ..integer import fixedpoint as fp
from ..integer import kernels as K
from ..integer.kernels import INT16_UNIT_OUTPUT, LOGISTIC_INT8_OUTPUT, TANH_INT8_OUTPUT
from ..program import Op, Program, Tensor, tie_groups


def widen_input_stage(fprog: Program) -> Program:
    """The int8 input stage: the input, and every linear FULLY_CONNECTED computed from it alone,
    stay 16-bit (int16x8 layers, as CMSIS-NN and TFLM run them next to int8 ones).

    Raw audio spans a far wider range than its typical sample: on the bundled speech the median
    |sample| is below one int8 step of the calibrated input range (the default model loses 1.5 dB
    with an int8 input, 0.7 dB with this stage: `convert --int8-input`). Every other tensor is int8:
    a FULLY_CONNECTED reading only wide tensors writes a wide copy of its output and a QUANTIZE
    narrows it, and any other reader of a wide tensor reads a QUANTIZEd int8 copy of it."""
    tied = {t for g in tie_groups(fprog) if len(g) > 1 for t in g}
    wide = {fprog.input}
    for op in fprog.ops:
        if (op.kind == "fc" and op.activation == "NONE" and op.output not in tied and op.output != fprog.output
                and all(n in wide for n, _ in op.inputs)):
            wide.add(op.output)
    tensors = {n: dataclasses.replace(t, wide=n in wide) for n, t in fprog.tensors.items()}
    ops: list[Op] = []
    narrow: dict[str, str] = {}

    def narrowed(name: str) -> str:
        if name not in narrow:
            narrow[name] = f"{name}/q8"
            tensors[narrow[name]] = Tensor(narrow[name], tensors[name].channels)
            ops.append(Op("requant", [(name, 0)], narrow[name]))
        return narrow[name]

    for op in fprog.ops:
        if op.output in wide or not any(n in wide for n, _ in op.inputs):
            ops.append(op)
        elif op.kind == "fc" and all(n in wide for n, _ in op.inputs):
            mid = f"{op.output}/wide"
            tensors[mid] = Tensor(mid, tensors[op.output].channels, wide=True)
            ops.append(dataclasses.replace(op, output=mid))
            ops.append(Op("requant", [(mid, 0)], op.output))
        else:
            ops.append(dataclasses.replace(op, inputs=[(narrowed(n) if n in wide else n, d) for n, d in op.inputs]))
    return dataclasses.replace(fprog, tensors=tensors, ops=ops)


def fixed_quant(kind: str, precision: str) -> QuantParams:
    if precision == "int16x8":
        return INT16_UNIT_OUTPUT
    return TANH_INT8_OUTPUT if kind == "tanh" else LOGISTIC_INT8_OUTPUT


MIN_SCALE = 1e-6  # TFLM's TANH/LOGISTIC Prepare needs input_scale * 2**27 > 1 (int8); a floor keeps silent
                  # (all-zero) calibration tensors inside what every kernel accepts


# -- parameters LiteRT and TFLM turn into the same integers -----------------------------
#
# Both runtimes read the same scales but do not compute the same integers from them
# (single-op models, tests/test_integer_kernels.py; sources: LiteRT tflite/kernels/, TFLM
# tensorflow/lite/micro/kernels/):
#   FULLY_CONNECTED  LiteRT's reference kernel requantizes in floating point,
#                    round(double(acc) * (double(s_in) * double(s_w) / double(s_out))), ties away
#                    from zero. TFLM int8: MultiplyByQuantizedMultiplier, a 31-bit multiplier and
#                    double rounding (SRDHM, then RoundingDivideByPOT). TFLM 16x8 (int64 bias):
#                    (acc * round(m / 2**16) + 2**(14 - shift)) >> (15 - shift), a 15-bit
#                    multiplier rounded once, ties up.
#   CONV_2D int8     both: TFLM's integer MultiplyByQuantizedMultiplier per channel.
#   MUL, RELU        LiteRT forms the multiplier in float32 (s1 * s2 / s_out, s_in / s_out),
#                    TFLM in double; the kernels are the same.
#   TANH, LOGISTIC   int8: LiteRT a table of float32 tanhf / 1 / (1 + expf(-x)), TFLM gemmlowp
#                    fixed point. int16: the same arithmetic.
#   ADD, QUANTIZE, CONCATENATION, pools: the same arithmetic (int16 ADD only while not all three
#                    scales are powers of two: LiteRT then takes its pot_scale_int16 path).
# So parameters are chosen where both are exact:
#   int16x8  every calibrated scale is C16 * 2**e. C16 = 257/256 is the one mantissa of at most
#            9 bits with 1/C16 rounding to float32 and to a 31-bit multiplier alike, so MUL/RELU
#            multipliers agree; and no such scale is a power of two. Each FC channel's multiplier
#            M = s_in * s_w / s_out is n * 2**k, n odd in (2**14, 2**15): TFLM's 16-bit multiplier
#            is then M itself and both runtimes round the exact acc * M. They still part on an
#            exact negative tie (TFLM rounds up, LiteRT away from zero), which with n odd takes
#            acc == -(2j + 1) * 2**(14 - shift), an output of -(2j + 1) * n / 2 <= -8192 LSB.
#   int8     FULLY_CONNECTED layers are exported as 1x1 CONV_2D (convert.export), exact on any
#            scales and weights. MUL/RELU output scales and TANH/LOGISTIC input scales move up a
#            fine grid until both runtimes agree on every int8 input (a TANH/LOGISTIC whose input
#            has the fixed scale of another one's output reads a requantized copy where needed).
# An int16x8 layer where this fails (a weight scale that is not a float32) keeps plain scales:
# TFLM's arithmetic stays exact in the engine, LiteRT may differ there by 1 LSB.

C16 = 257 / 256
_INT8_LUT_MARGIN = 2e-4  # LSB; LiteRT's float32 table errs by < 1e-4 LSB


def scale_grid(s0: float, unit: float, bits: int):
    """Scales >= s0 of the form unit * k * 2**e, k an integer in [2**(bits-1), 2**bits), ascending."""
    lo = 1 << (bits - 1)
    e = math.floor(math.log2(s0 / unit)) - (bits - 1)
    k = max(math.ceil(s0 / math.ldexp(unit, e)), lo)
    while k >= 2 * lo:
        e += 1
        k = max(math.ceil(s0 / math.ldexp(unit, e)), lo)
    while True:
        s = math.ldexp(unit * k, e)
        if s >= s0:
            yield s
        k += 1
        if k == 2 * lo:
            k, e = lo, e + 1


def int16_scale(s0: float) -> float:
    """The smallest C16 * 2**e >= s0."""
    return next(scale_grid(max(s0, MIN_SCALE), C16, 1))


def fc_weight_scale(s_in: float, s_out: float, wmax: float) -> float | None:
    """int16x8: the smallest weight scale >= wmax / 127 whose multiplier s_in * s_w / s_out both
    runtimes apply exactly; None where there is none."""
    m0 = s_in * (wmax / 127.0) / s_out if wmax > 0 else 2.0**-8
    q, e = math.frexp(m0)
    n = math.ceil(q * 2**15)
    n += 1 - n % 2
    if n > 2**15:
        n, e = 2**14 + 1, e + 1
    multiplier = math.ldexp(n, e - 15)
    s_w = multiplier * s_out / s_in
    f32 = np.float32
    exact = (float(f32(s_w)) == s_w
             and float(np.float64(s_in) * np.float64(s_w) / np.float64(s_out)) == multiplier  # LiteRT, TFLM per channel
             and float(f32(f32(s_in) * f32(s_w))) == s_in * s_w)  # TFLM per tensor: the float32 product
    return s_w if exact else None


def int8_lut_agrees(kind: str, x_q: QuantParams) -> bool:
    """TFLM's gemmlowp TANH/LOGISTIC equals LiteRT's float32 table on all 256 inputs: the true
    value rounds to TFLM's result and lies more than _INT8_LUT_MARGIN from a rounding tie."""
    x = np.arange(-128, 128)
    real = x_q.scale * (x - x_q.zero_point)
    if kind == "tanh":
        v, got = np.tanh(real) * 128, K.tanh(x.astype(np.int8), x_q, TANH_INT8_OUTPUT)
    else:
        v, got = 256 / (1 + np.exp(-real)) - 128, K.logistic(x.astype(np.int8), x_q, LOGISTIC_INT8_OUTPUT)
    want = np.clip(fp.tflite_round(v), -128, 127)
    base = np.floor(v)
    near_tie = (base >= -128) & (base <= 126) & (np.abs(v - base - 0.5) < _INT8_LUT_MARGIN)
    return bool((got == want).all() and not near_tie.any())


def int8_rescale_agrees(kind: str, qs: list[QuantParams], out_q: QuantParams) -> bool:
    """MUL / RELU: LiteRT's float32 multiplier gives TFLM's result on every int8 input."""
    f32 = np.float32
    try:
        if kind == "mul":
            p = K.mul_params(qs[0], qs[1], out_q, "int8")
            real = f32(f32(qs[0].scale) * f32(qs[1].scale)) / f32(out_q.scale)
        else:
            p = K.relu_params(qs[0], out_q, "int8")
            real = f32(qs[0].scale) / f32(out_q.scale)
    except ValueError:  # TFLM refuses these scales; the engine says so later
        return True
    mult, shift = fp.quantize_multiplier(float(real))
    if (mult, shift) == (p.mult, p.shift):
        return True
    litert = dataclasses.replace(p, mult=mult, shift=shift)
    x = np.arange(-128, 128, dtype=np.int8)
    if kind == "mul":
        return bool((K.mul_eval(x[:, None], x[None, :], p) == K.mul_eval(x[:, None], x[None, :], litert)).all())
    return bool((K.requant_eval(x, p) == K.requant_eval(x, litert)).all())


def _assign_scales(fprog: Program, tensors: dict[str, Tensor], ranges, precision: str) -> None:
    producer = {op.output: op for op in fprog.ops}
    groups = tie_groups(fprog)
    # fixed and 16-bit groups first: an int8 group's agreement checks need its neighbours' scales
    for group in sorted(groups, key=lambda g: not any(tensors[t].fixed or tensors[t].wide for t in g)):
        fixed = [t for t in group if tensors[t].fixed]
        if fixed:  # lower() guarantees a fixed tensor is alone in its group
            q = fixed_quant(producer[fixed[0]].kind, precision)
        else:
            lo = min(min(ranges[t][0] for t in group), 0.0)
            hi = max(max(ranges[t][1] for t in group), 0.0)
            if precision == "int16x8" or any(tensors[t].wide for t in group):
                q = QuantParams(int16_scale(max(-lo, hi) / 32767.0), 0)
            else:
                q = _int8_group_quant(fprog, group, tensors, lo, hi)
        for t in group:
            tensors[t].q = q


def _int8_group_quant(fprog, group, tensors, lo, hi) -> QuantParams:
    members = set(group)
    checks = [op for op in fprog.ops
              if (op.kind in ("mul", "relu") and members & {op.output, *(n for n, _ in op.inputs)})
              or (op.kind in ("tanh", "logistic") and op.inputs[0][0] in members)]
    first = None
    for _, scale in zip(range(64), scale_grid(max((hi - lo) / 255.0, MIN_SCALE), 1, 7)):
        q = QuantParams(scale, int(np.clip(np.round(-128 - lo / scale), -128, 127)))
        first = first or q
        if all(_int8_op_agrees(op, q, members, tensors) for op in checks):
            return q
    return first


def _int8_op_agrees(op: Op, q: QuantParams, members: set[str], tensors: dict[str, Tensor]) -> bool:
    if op.kind in ("tanh", "logistic"):
        return int8_lut_agrees(op.kind, q)
    qs = [q if n in members else tensors[n].q for n, _ in op.inputs]
    out_q = q if op.output in members else tensors[op.output].q
    if out_q is None or any(x is None for x in qs):  # checked when the last of them is chosen
        return True
    return int8_rescale_agrees(op.kind, qs, out_q)


def _requantize_fixed_lut_inputs(fprog: Program, ranges):
    """int8 TANH/LOGISTIC of a TANH/LOGISTIC output read it at a fixed scale (1/128 or 1/256), and
    three of the four pairs put TFLM's gemmlowp and LiteRT's float table on two sides of a
    rounding tie (e.g. LOGISTIC of 1/128 at x = 1: 0.499997, TFLM 1, LiteRT 0). Such an op
    reads a requantized copy instead, whose scale quantize chooses."""
    producer = {op.output: op for op in fprog.ops}
    tensors, ranges, ops = dict(fprog.tensors), dict(ranges), []
    for op in fprog.ops:
        (src, delay), = op.inputs if op.kind in ("tanh", "logistic") else ((None, 0),)
        if src is not None and fprog.tensors[src].fixed and not int8_lut_agrees(
                op.kind, fixed_quant(producer[src].kind, "int8")):
            mid = f"{op.output}/in"
            tensors[mid] = Tensor(mid, fprog.tensors[src].channels)
            ranges[mid] = ranges[src]
            ops.append(Op("requant", [(src, delay)], mid))
            op = Op(op.kind, [(mid, 0)], op.output, op.activation)
        ops.append(op)
    if len(ops) == len(fprog.ops):
        return fprog, ranges
    return dataclasses.replace(fprog, tensors=tensors, ops=ops), ranges


def quantize(fprog: Program, ranges: dict[str, tuple[float, float]], precision: str) -> Program:
    """Float program + calibrated ranges -> integer program whose parameters TFLM and LiteRT
    turn into the same integers (see above)."""
    if precision not in ("int8", "int16x8"):
        raise ValueError(precision)
    if precision == "int8":
        fprog, ranges = _requantize_fixed_lut_inputs(fprog, ranges)
    tensors = {name: Tensor(t.name, t.channels, fixed=t.fixed, wide=t.wide) for name, t in fprog.tensors.items()}
    _assign_scales(fprog, tensors, ranges, precision)
    # relu-fused fc outputs already have lo >= 0 from calibration, so the full int8 range is used.
    ops = []
    for op in fprog.ops:
        if op.kind != "fc":
            ops.append(Op(op.kind, list(op.inputs), op.output, op.activation))
            continue
        layer = "int16x8" if tensors[op.inputs[0][0]].wide else precision  # the input stage of int8 is 16x8
        bias_dtype = np.int64 if layer == "int16x8" else np.int32
        lim = np.iinfo(bias_dtype)
        s_in, s_out = tensors[op.inputs[0][0]].q.scale, tensors[op.output].q.scale
        w = op.weights.astype(np.float64)
        wmax = np.abs(w).max(axis=1)
        exact = [fc_weight_scale(s_in, s_out, float(m)) for m in wmax] if layer == "int16x8" else [None]
        if None in exact:  # plain scales (int8, exported as CONV_2D, is exact on them anyway)
            scales = np.where(wmax > 0, wmax / 127.0, 1.0).astype(np.float32)
        else:
            scales = np.array(exact, np.float32)
        wq = np.clip(np.round(w / scales[:, None].astype(np.float64)), -127, 127).astype(np.int8)
        bias_scale = np.float64(s_in) * scales.astype(np.float64)
        bq = np.clip(np.round(op.bias.astype(np.float64) / bias_scale), lim.min, lim.max).astype(bias_dtype)
        ops.append(Op("fc", list(op.inputs), op.output, op.activation, wq, scales, bq))
    return Program(precision, tensors, ops, fprog.input, fprog.output, fprog.head, fprog.mulaw_bits,
                   dict(fprog.meta))

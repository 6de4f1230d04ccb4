"""The op program: a Graph lowered to TFLite-shaped ops, float or quantized.

One program drives everything downstream: the numpy engines execute it, the
TFLite exporter writes it (full-window and streaming), the C emitter renders
it. Each op reads *taps* — (tensor, delay) pairs — so a dilated conv is a
FULLY_CONNECTED over the concatenation of its k taps, and streaming needs one
ring buffer per tensor holding its last `max delay` vectors.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..graph import Graph
from ..integer import QuantParams
from ..integer import fixedpoint as fp
from ..integer import kernels as K
from ..integer.kernels import INT16_UNIT_OUTPUT, LOGISTIC_INT8_OUTPUT, TANH_INT8_OUTPUT

PRECISIONS = ("int8", "int16x8", "float32")
ACT_DTYPE = {"int8": np.int8, "int16x8": np.int16, "float32": np.float32}


@dataclass
class Tensor:
    name: str
    channels: int
    q: QuantParams | None = None  # None in the float program
    fixed: bool = False           # output of TANH/LOGISTIC: its quantization is dictated by the kernel
    wide: bool = False            # int8 program: kept at 16 bits (the input stage, see widen_input_stage)


@dataclass
class Op:
    kind: str                      # fc tanh logistic relu requant add mul concat avgpool maxpool
    inputs: list[tuple[str, int]]  # (tensor, delay in samples)
    output: str
    activation: str = "NONE"       # fused activation of fc
    weights: np.ndarray | None = None        # fc: [out, k*in] (float32, or int8 per-channel symmetric)
    weight_scales: np.ndarray | None = None  # fc, quantized: per output channel
    bias: np.ndarray | None = None           # fc: float32, int32 (int8) or int64 (int16x8)


@dataclass
class Program:
    precision: str
    tensors: dict[str, Tensor]
    ops: list[Op]
    input: str
    output: str
    head: str = "regression"
    mulaw_bits: int = 8
    meta: dict = field(default_factory=dict)

    @property
    def dtype(self):
        return ACT_DTYPE[self.precision]

    @property
    def quantized(self) -> bool:
        return self.precision != "float32"

    def dtype_of(self, name: str):
        """The stored type of one tensor: the program's, or int16 for the input stage of int8."""
        return np.int16 if self.tensors[name].wide and self.precision == "int8" else self.dtype

    def fc_as_conv(self, op) -> bool:
        """Every quantized FULLY_CONNECTED is exported as a 1x1 CONV_2D, whose Prepare forms every multiplier
        per channel in double. int8: LiteRT's reference FULLY_CONNECTED requantizes in floating point, its
        CONV_2D with TFLM's integers. int16 input: CMSIS-NN's FULLY_CONNECTED refuses per-channel weights,
        its s16 convolution takes them, so stock TFLM with CMSIS-NN runs the model."""
        return self.quantized and op.kind == "fc"

    @property
    def input_dtype(self):
        return self.dtype_of(self.input)

    def ring_delays(self) -> dict[str, list[int]]:
        """Tensor -> the delays (> 0) any op reads it at, sorted."""
        delays: dict[str, set[int]] = {}
        for op in self.ops:
            for name, d in op.inputs:
                if d > 0:
                    delays.setdefault(name, set()).add(d)
        return {name: sorted(ds) for name, ds in delays.items()}

    def ring_lengths(self) -> dict[str, int]:
        return {name: ds[-1] for name, ds in self.ring_delays().items()}

    def receptive_field(self) -> int:
        """1 + how far back the output reaches through the ops' delays."""
        span = {self.input: 0}
        for op in self.ops:
            span[op.output] = max(span[name] + d for name, d in op.inputs)
        return span[self.output] + 1

    def state_bytes(self) -> int:
        return sum(n * self.tensors[t].channels * np.dtype(self.dtype_of(t)).itemsize
                   for t, n in self.ring_lengths().items())

    def zero_code(self, name: str):
        """The stored value of real 0 in a tensor: what rings and padding start with."""
        q = self.tensors[name].q
        return 0 if q is None else q.zero_point


# -- lowering -------------------------------------------------------------------------


def lower(graph: Graph) -> Program:
    """Graph with float weights -> float program (every tensor the runtime will see)."""
    tensors: dict[str, Tensor] = {}
    ops: list[Op] = []

    def tensor(name, channels, fixed=False):
        tensors[name] = Tensor(name, channels, fixed=fixed)
        return name

    ties = _tie_groups(graph)
    for n in graph.nodes:
        if n.op == "input":
            tensor(n.name, 1)
            continue
        src = n.inputs[0]
        if n.op == "conv":
            kernel, bias = graph.weights[n.name]
            k, cin, cout = kernel.shape
            w = kernel.reshape(k * cin, cout).T.astype(np.float32)  # taps oldest first, as Conv1D's kernel
            b = np.zeros(cout, np.float32) if bias is None else bias.astype(np.float32)
            taps = [(src, (k - 1 - j) * n.dilation) for j in range(k)]
            if n.activation in ("tanh", "sigmoid"):
                pre = tensor(f"{n.name}/pre", cout)
                ops.append(Op("fc", taps, pre, weights=w, bias=b))
                _transcendental(ops, tensors, ties, n.name, cout, pre, n.activation)
            else:
                tensor(n.name, cout)
                ops.append(Op("fc", taps, n.name, "RELU" if n.activation == "relu" else "NONE", weights=w, bias=b))
        elif n.op == "pool":
            if n.kernel == 1:  # a size-1 pool is the identity; keep the tensor name with a requant no-op
                tensor(n.name, n.channels)
                ops.append(Op("requant", [(src, 0)], n.name))
                continue
            tensor(n.name, n.channels)
            ops.append(Op(f"{n.pool}pool", [(src, (n.kernel - 1 - j) * n.dilation) for j in range(n.kernel)], n.name))
        elif n.op in ("add", "mul"):
            acc = n.inputs[0]
            for i, other in enumerate(n.inputs[1:], 1):
                out = n.name if i == len(n.inputs) - 1 else tensor(f"{n.name}/partial{i}", n.channels)
                if out == n.name:
                    tensor(n.name, n.channels)
                ops.append(Op(n.op, [(acc, 0), (other, 0)], out))
                acc = out
        elif n.op == "concat":
            tensor(n.name, n.channels)
            ops.append(Op("concat", [(i, 0) for i in n.inputs], n.name))
        elif n.op == "act":
            if n.activation in ("tanh", "sigmoid"):
                _transcendental(ops, tensors, ties, n.name, n.channels, src, n.activation)
            else:
                tensor(n.name, n.channels)
                ops.append(Op("relu" if n.activation == "relu" else "requant", [(src, 0)], n.name))
    unbiased = {n.name for n in graph.nodes if n.op == "conv" and not n.use_bias}
    ops = _fold_linear_lifts(ops, tensors, graph.output, unbiased)
    return Program("float32", tensors, ops, graph.input_name, graph.output, graph.head, graph.mulaw_bits)


MAX_TAPS = 10  # TFLM's CONCATENATION takes at most 10 inputs (kMaxInputNum)


def runtime_macs(graph: Graph) -> int:
    """MACs per sample of the lowered program (what every runtime computes: linear lifts folded),
    from the structure alone, so an untrained spec can be sized."""
    by = graph.by_name
    shaped = dataclasses.replace(graph, weights={
        n.name: (np.zeros((n.kernel, by[n.inputs[0]].channels, n.channels), np.float32),
                 np.zeros(n.channels, np.float32) if n.use_bias else None) for n in graph.nodes if n.op == "conv"})
    return sum(int(op.weights.size) for op in lower(shaped).ops if op.kind == "fc")


def _fold_linear_lifts(ops: list[Op], tensors: dict[str, Tensor], output: str, unbiased: set[str]) -> list[Op]:
    """A linear FULLY_CONNECTED without bias that widens its input (e.g. the 1 -> 12 channel lift
    after the input) is multiplied into the FULLY_CONNECTED layers that read it: they read its
    input instead, at the summed delays. Fewer MACs, and no rounding of the wide intermediate on
    their path (ADDs and others still read it). Without a bias it is exact from the first sample:
    the lift's causal padding (zeros) is what its zero-padded input gives; a bias would not be."""
    for name in [op.output for op in ops]:
        lift = next((op for op in ops if op.output == name), None)  # the current op (readers get rewritten)
        if (lift is None or lift.kind != "fc" or lift.activation != "NONE" or lift.output == output
                or lift.output not in unbiased):
            continue
        src = {n for n, _ in lift.inputs}
        c_in = tensors[lift.inputs[0][0]].channels
        if len(src) != 1 or len(lift.inputs) * c_in >= tensors[lift.output].channels:
            continue
        c = tensors[lift.output].channels
        readers = [op for op in ops if any(n == lift.output for n, _ in op.inputs)]

        def merged_taps(op):
            return len({d + e for _, d in lift.inputs for _, e in op.inputs})

        folded = [op for op in readers if op.kind == "fc" and all(n == lift.output for n, _ in op.inputs)
                  and merged_taps(op) <= MAX_TAPS and merged_taps(op) * c_in <= len(op.inputs) * c]
        if not folded:
            continue
        for op in folded:
            taps: dict[int, np.ndarray] = {}
            for j, (_, e) in enumerate(op.inputs):
                w_j = op.weights[:, j * c:(j + 1) * c].astype(np.float64)
                for i, (x, d) in enumerate(lift.inputs):
                    part = w_j @ lift.weights[:, i * c_in:(i + 1) * c_in].astype(np.float64)
                    taps[d + e] = taps.get(d + e, 0) + part
            delays = sorted(taps, reverse=True)  # oldest first, as lower() orders taps
            x = lift.inputs[0][0]
            ops[ops.index(op)] = dataclasses.replace(
                op, inputs=[(x, d) for d in delays],
                weights=np.concatenate([taps[d] for d in delays], axis=1).astype(np.float32))
        if len(folded) == len(readers):
            ops.remove(lift)
            del tensors[lift.output]
    return ops


def _transcendental(ops, tensors, ties, name, channels, src, activation):
    """TANH/LOGISTIC have a kernel-dictated output scale; requantize if the tensor is tied to others."""
    kind = "tanh" if activation == "tanh" else "logistic"
    if len(ties.get(name, ())) > 1:
        raw = f"{name}/{kind}"
        tensors[raw] = Tensor(raw, channels, fixed=True)
        ops.append(Op(kind, [(src, 0)], raw))
        tensors[name] = Tensor(name, channels)
        ops.append(Op("requant", [(raw, 0)], name))
    else:
        tensors[name] = Tensor(name, channels, fixed=True)
        ops.append(Op(kind, [(src, 0)], name))


def _groups(items, joins) -> list[list[str]]:
    """Union-find: `items` partitioned so that every (a, b) in `joins` lands in one group."""
    parent = {t: t for t in items}

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in joins:
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for t in items:
        groups.setdefault(find(t), []).append(t)
    return list(groups.values())


def _tie_groups(graph: Graph) -> dict[str, frozenset[str]]:
    """Tensors that must share one quantization: CONCATENATION and pooling copy raw values."""
    joins = [(i, n.name) for n in graph.nodes if n.op == "concat" or (n.op == "pool" and n.kernel > 1)
             for i in n.inputs]
    return {name: frozenset(g) for g in _groups([n.name for n in graph.nodes], joins) for name in g}


# -- quantization ---------------------------------------------------------------------


def tie_groups(program: Program) -> list[list[str]]:
    """Groups of program tensors that must share quantization (same rule, on the program)."""
    joins = [(name, op.output) for op in program.ops if op.kind in ("concat", "avgpool", "maxpool")
             for name, _ in op.inputs]
    return _groups(list(program.tensors), joins)


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


# -- persistence ----------------------------------------------------------------------


def to_files(prog: Program) -> tuple[dict, dict[str, np.ndarray]]:
    """(JSON-able structure, arrays) — what OUT_DIR stores for `emit` to read back."""
    arrays = {}
    ops = []
    for i, op in enumerate(prog.ops):
        d = {"kind": op.kind, "inputs": [list(t) for t in op.inputs], "output": op.output, "activation": op.activation}
        for field_ in ("weights", "weight_scales", "bias"):
            value = getattr(op, field_)
            if value is not None:
                arrays[f"op{i}_{field_}"] = value
        ops.append(d)
    tensors = {name: {"channels": t.channels, "fixed": t.fixed, "wide": t.wide,
                      "scale": None if t.q is None else t.q.scale,
                      "zero_point": None if t.q is None else t.q.zero_point} for name, t in prog.tensors.items()}
    return ({"precision": prog.precision, "input": prog.input, "output": prog.output, "head": prog.head,
             "mulaw_bits": prog.mulaw_bits, "tensors": tensors, "ops": ops}, arrays)


def from_files(doc: dict, arrays) -> Program:
    tensors = {name: Tensor(name, t["channels"], None if t["scale"] is None else QuantParams(t["scale"], t["zero_point"]),
                            t["fixed"], t["wide"]) for name, t in doc["tensors"].items()}
    ops = []
    for i, d in enumerate(doc["ops"]):
        get = lambda f: arrays[f"op{i}_{f}"] if f"op{i}_{f}" in arrays else None  # noqa: E731
        ops.append(Op(d["kind"], [tuple(t) for t in d["inputs"]], d["output"], d["activation"],
                      get("weights"), get("weight_scales"), get("bias")))
    return Program(doc["precision"], tensors, ops, doc["input"], doc["output"], doc["head"], doc["mulaw_bits"])

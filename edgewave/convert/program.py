"""The op program: a Graph lowered to TFLite-shaped ops, float or quantized.

One program drives everything downstream: the numpy engines execute it, the
TFLite exporter writes it (full-window and streaming), the C emitter renders
it. Each op reads *taps* — (tensor, delay) pairs — so a dilated conv is a
FULLY_CONNECTED over the concatenation of its k taps, and streaming needs one
ring buffer per tensor holding its last `max delay` vectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..graph import Graph
from ..integer import QuantParams
from ..integer.kernels import INT16_UNIT_OUTPUT, LOGISTIC_INT8_OUTPUT, TANH_INT8_OUTPUT

PRECISIONS = ("int8", "int16x8", "float32")
ACT_DTYPE = {"int8": np.int8, "int16x8": np.int16, "float32": np.float32}


@dataclass
class Tensor:
    name: str
    channels: int
    q: QuantParams | None = None  # None in the float program
    fixed: bool = False           # output of TANH/LOGISTIC: its quantization is dictated by the kernel


@dataclass
class Op:
    kind: str                      # fc tanh logistic relu requant add mul concat avgpool maxpool
    inputs: list[tuple[str, int]]  # (tensor, delay in samples)
    output: str
    activation: str = "NONE"       # fused activation of fc
    weights: np.ndarray | None = None        # fc: [out, k*in] (float32, or int8 per-channel symmetric)
    weight_scales: np.ndarray | None = None  # fc, quantized: per output channel
    bias: np.ndarray | None = None           # fc: float32, int32 (int8) or int64 (int16x8)

    @property
    def tap_count(self) -> int:
        return len(self.inputs)


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
        item = np.dtype(self.dtype).itemsize
        return sum(n * self.tensors[t].channels * item for t, n in self.ring_lengths().items())

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
    return Program("float32", tensors, ops, graph.input_name, graph.output, graph.head, graph.mulaw_bits)


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


def fixed_quant(kind: str, precision: str) -> QuantParams:
    if precision == "int16x8":
        return INT16_UNIT_OUTPUT
    return TANH_INT8_OUTPUT if kind == "tanh" else LOGISTIC_INT8_OUTPUT


MIN_SCALE = 1e-6  # TFLM's TANH/LOGISTIC Prepare needs input_scale * 2**27 > 1 (int8); a floor keeps silent
                  # (all-zero) calibration tensors inside what every kernel accepts


def quant_from_range(lo: float, hi: float, precision: str) -> QuantParams:
    """Affine int8 (zero point anywhere) or symmetric int16 (zero point 0, as TFLM's int16 kernels need)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if precision == "int16x8":
        return QuantParams(max(max(-lo, hi) / 32767.0, MIN_SCALE), 0)
    scale = max((hi - lo) / 255.0, MIN_SCALE)
    zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return QuantParams(scale, zp)


def quantize(fprog: Program, ranges: dict[str, tuple[float, float]], precision: str) -> Program:
    """Float program + calibrated ranges -> integer program with TFLM-compatible parameters."""
    if precision not in ("int8", "int16x8"):
        raise ValueError(precision)
    tensors = {name: Tensor(t.name, t.channels, fixed=t.fixed) for name, t in fprog.tensors.items()}
    producer = {op.output: op for op in fprog.ops}
    for group in tie_groups(fprog):
        fixed = [t for t in group if tensors[t].fixed]
        if fixed:  # lower() guarantees a fixed tensor is alone in its group
            kind = producer[fixed[0]].kind
            q = fixed_quant(kind, precision)
        else:
            lo = min(ranges[t][0] for t in group)
            hi = max(ranges[t][1] for t in group)
            q = quant_from_range(lo, hi, precision)
        for t in group:
            tensors[t].q = q
    # Tensors only consumed by pools share their quant with the pool (done above); relu-fused fc
    # outputs already have lo >= 0 from calibration, so the full int8 range is used.
    act = np.dtype(ACT_DTYPE[precision])
    ops = []
    for op in fprog.ops:
        if op.kind != "fc":
            ops.append(Op(op.kind, list(op.inputs), op.output, op.activation))
            continue
        in_q = tensors[op.inputs[0][0]].q
        w = op.weights.astype(np.float64)
        wmax = np.abs(w).max(axis=1)
        scales = np.where(wmax > 0, wmax / 127.0, 1.0).astype(np.float32)
        wq = np.clip(np.round(w / scales[:, None].astype(np.float64)), -127, 127).astype(np.int8)
        bias_scale = np.float64(in_q.scale) * scales.astype(np.float64)
        bias_dtype = np.int64 if act == np.int16 else np.int32
        bq = np.round(op.bias.astype(np.float64) / bias_scale)
        lim = np.iinfo(bias_dtype)
        bq = np.clip(bq, lim.min, lim.max).astype(bias_dtype)
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
    tensors = {name: {"channels": t.channels, "fixed": t.fixed,
                      "scale": None if t.q is None else t.q.scale,
                      "zero_point": None if t.q is None else t.q.zero_point} for name, t in prog.tensors.items()}
    return ({"precision": prog.precision, "input": prog.input, "output": prog.output, "head": prog.head,
             "mulaw_bits": prog.mulaw_bits, "tensors": tensors, "ops": ops}, arrays)


def from_files(doc: dict, arrays) -> Program:
    tensors = {name: Tensor(name, t["channels"], None if t["scale"] is None else QuantParams(t["scale"], t["zero_point"]),
                            t["fixed"]) for name, t in doc["tensors"].items()}
    ops = []
    for i, d in enumerate(doc["ops"]):
        get = lambda f: arrays[f"op{i}_{f}"] if f"op{i}_{f}" in arrays else None  # noqa: E731
        ops.append(Op(d["kind"], [tuple(t) for t in d["inputs"]], d["output"], d["activation"],
                      get("weights"), get("weight_scales"), get("bias")))
    return Program(doc["precision"], tensors, ops, doc["input"], doc["output"], doc["head"], doc["mulaw_bits"])

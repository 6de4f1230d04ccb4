"""The op program: a Graph lowered to TFLite-shaped ops, float or quantized.

One program drives everything downstream: the numpy engines execute it, the
TFLite exporter writes it (full-window and streaming), the C emitter renders
it. Each op reads *taps* — (tensor, delay) pairs — so a dilated conv is a
FULLY_CONNECTED over the concatenation of its k taps, and streaming needs one
ring buffer per tensor holding its last `max delay` vectors.

This module is the representation alone (and its files), below everything that
builds it (convert.lowering, convert.quantization) or runs it (engine, runners,
emit): it imports nothing of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .integer import QuantParams

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


# -- the streaming model's ring interface -----------------------------------------------
# One name per tap a ring feeds and per value pushed into a ring: the exporter gives the
# streaming model's signature these names, and every runtime that keeps the rings addresses it by them.


def tap_name(tensor: str, delay: int) -> str:
    return f"tap_{tensor}_{delay}"


def push_name(tensor: str) -> str:
    return f"new_{tensor}"


# -- tensors that share one quantization --------------------------------------------------


def connected_groups(items, joins) -> list[list[str]]:
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


def tie_groups(program: Program) -> list[list[str]]:
    """Groups of program tensors that must share quantization: CONCATENATION and pooling copy raw
    values (convert.lowering applies the same rule to the graph, before there is a program)."""
    joins = [(name, op.output) for op in program.ops if op.kind in ("concat", "avgpool", "maxpool")
             for name, _ in op.inputs]
    return connected_groups(list(program.tensors), joins)


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

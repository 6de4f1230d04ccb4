"""Program -> TFLite flatbuffers: a whole-window model and a one-sample streaming model.

Both write the same ops with the same parameters, so per time step they do
the same integer arithmetic; they differ only in where taps come from:

- full:   one PAD per ring tensor (zero point on the left, the causal padding)
          and a STRIDED_SLICE per delay;
- stream: a signature input ``tap_<tensor>_<delay>`` per delay. The runner
          keeps one ring buffer per tensor, feeds the taps, and pushes the
          outputs ``new_<tensor>`` back (external state addressed by name).

No SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND ever appears: TFLM miscomputes them
for dilated convolutions (DESIGN.md §5), and taps make them unnecessary.
"""

from __future__ import annotations

import numpy as np

from ..program import Program, push_name, tap_name
from ..tflite import ModelBuilder

_POOL = {"avgpool": "AVERAGE_POOL_2D", "maxpool": "MAX_POOL_2D"}
_UNARY = {"tanh": "TANH", "logistic": "LOGISTIC", "relu": "RELU", "requant": "QUANTIZE"}


class _Writer:
    def __init__(self, prog: Program, time: int, description: str):
        self.p = prog
        self.T = time
        self.b = ModelBuilder(description)
        self.t: dict[str, object] = {}  # program tensor -> builder tensor [1, T, C]
        self.count = 0

    def act(self, name: str, shape, tensor_name: str | None = None):
        t = self.p.tensors[name]
        dtype = self.p.dtype_of(name)
        if t.q is None:
            return self.b.tensor(tensor_name or name, shape, dtype)
        return self.b.tensor(tensor_name or name, shape, dtype, scale=t.q.scale, zero_point=t.q.zero_point)

    def temp(self, like: str, shape):
        self.count += 1
        return self.act(like, shape, f"{like}/t{self.count}")

    def const_i32(self, name, values):
        return self.b.const(name, np.asarray(values, np.int32))

    # -- ops ----------------------------------------------------------------------
    def write_op(self, op, taps) -> None:
        p, b, T = self.p, self.b, self.T
        out_t = p.tensors[op.output]
        out = self.act(op.output, (1, T, out_t.channels))
        self.t[op.output] = out
        if op.kind == "fc":
            x = taps[0] if len(taps) == 1 else self._concat(op.inputs[0][0], taps)
            n_out, depth = op.weights.shape
            w_kwargs, bias_kwargs = {}, {}
            if p.quantized:
                zeros = np.zeros(n_out, np.int64)
                in_q = p.tensors[op.inputs[0][0]].q
                w_kwargs = dict(scale=op.weight_scales, zero_point=zeros, quantized_dimension=0)
                bias_kwargs = dict(scale=(np.float64(in_q.scale) * op.weight_scales).astype(np.float32),
                                   zero_point=zeros, quantized_dimension=0)
            bias = b.tensor(f"{op.output}/bias", op.bias.shape, op.bias.dtype, data=op.bias, **bias_kwargs)
            if p.fc_as_conv(op):
                self._fc_as_conv(op, x, bias, out, w_kwargs)
            else:
                w = b.tensor(f"{op.output}/weights", op.weights.shape, op.weights.dtype, data=op.weights, **w_kwargs)
                b.op("FULLY_CONNECTED", [x, w, bias], [out], fused_activation=op.activation, keep_num_dims=True)
        elif op.kind in _UNARY:
            kind = _UNARY[op.kind]
            if kind == "QUANTIZE" and not p.quantized:
                kind = "RESHAPE"  # float identity
                b.op(kind, [taps[0], self.const_i32(f"{op.output}/shape", [1, T, out_t.channels])], [out],
                     new_shape=[1, T, out_t.channels])
            else:
                b.op(kind, [taps[0]], [out])
        elif op.kind in ("add", "mul"):
            b.op(op.kind.upper(), taps, [out], fused_activation="NONE")
        elif op.kind == "concat":
            b.op("CONCATENATION", taps, [out], axis=2, fused_activation="NONE")
        elif op.kind in _POOL:
            c = out_t.channels
            src = op.inputs[0][0]
            shaped = []
            for tap in taps:
                r = self.temp(src, (1, T, 1, c))
                b.op("RESHAPE", [tap, self.const_i32(f"{r.name}/shape", [1, T, 1, c])], [r], new_shape=[1, T, 1, c])
                shaped.append(r)
            stacked = self.temp(src, (1, T, len(taps), c))
            b.op("CONCATENATION", shaped, [stacked], axis=2, fused_activation="NONE")
            pooled = self.temp(op.output, (1, T, 1, c))
            b.op(_POOL[op.kind], [stacked], [pooled], padding="VALID", filter=(1, len(taps)), stride=(1, 1),
                 fused_activation="NONE")
            b.op("RESHAPE", [pooled, self.const_i32(f"{op.output}/shape", [1, T, c])], [out], new_shape=[1, T, c])
        else:
            raise AssertionError(op.kind)

    def _fc_as_conv(self, op, x, bias, out, w_kwargs):
        """A quantized FULLY_CONNECTED written as a 1x1 CONV_2D over [1, 1, T, depth] (see
        :meth:`Program.fc_as_conv`)."""
        b, T = self.b, self.T
        n_out, depth = op.weights.shape
        x4 = self.temp(op.inputs[0][0], (1, 1, T, depth))
        b.op("RESHAPE", [x, self.const_i32(f"{x4.name}/shape", [1, 1, T, depth])], [x4], new_shape=[1, 1, T, depth])
        w4 = b.tensor(f"{op.output}/filter", (n_out, 1, 1, depth), np.int8, data=op.weights.reshape(n_out, 1, 1, depth),
                      **w_kwargs)
        y4 = self.temp(op.output, (1, 1, T, n_out))
        b.op("CONV_2D", [x4, w4, bias], [y4], padding="VALID", stride=(1, 1), fused_activation=op.activation)
        b.op("RESHAPE", [y4, self.const_i32(f"{op.output}/shape", [1, T, n_out])], [out], new_shape=[1, T, n_out])

    def _concat(self, src: str, taps):
        c = self.p.tensors[src].channels
        joined = self.temp(src, (1, self.T, c * len(taps)))
        self.b.op("CONCATENATION", taps, [joined], axis=2, fused_activation="NONE")
        return joined


def full_model(prog: Program, window: int) -> bytes:
    """[1, window, 1] in, [1, window, C_out] out: every time step from a zero (causal-padded) start."""
    w = _Writer(prog, window, f"edgewave full-window model ({prog.precision})")
    x = w.act(prog.input, (1, window, 1), "x")
    w.t[prog.input] = x
    padded: dict[str, object] = {}
    rings = prog.ring_lengths()
    for op in prog.ops:
        taps = []
        for name, d in op.inputs:
            if d == 0:
                taps.append(w.t[name])
                continue
            length, c = rings[name], prog.tensors[name].channels
            if name not in padded:
                padded[name] = w.temp(name, (1, window + length, c))
                code = prog.zero_code(name)
                pads = w.const_i32(f"{name}/paddings", [[0, 0], [length, 0], [0, 0]])
                if prog.quantized and code != 0 and prog.dtype_of(name) == np.int16:
                    raise AssertionError("int16 PAD pads with raw 0; int16 tensors are symmetric")
                w.b.op("PAD", [w.t[name], pads], [padded[name]])
            sliced = w.temp(name, (1, window, c))
            begin = w.const_i32(f"{sliced.name}/begin", [0, length - d, 0])
            end = w.const_i32(f"{sliced.name}/end", [1, length - d + window, c])
            strides = w.const_i32(f"{sliced.name}/strides", [1, 1, 1])
            w.b.op("STRIDED_SLICE", [padded[name], begin, end, strides], [sliced])
            taps.append(sliced)
        w.write_op(op, taps)
    w.b.signature("serving_default", inputs={"x": x}, outputs={"y": w.t[prog.output]})
    return w.b.build()


def stream_model(prog: Program) -> bytes:
    """One sample in (`x`), prediction out (`y`); ring taps in, ring pushes out, all by signature name."""
    w = _Writer(prog, 1, f"edgewave streaming model ({prog.precision})")
    x = w.act(prog.input, (1, 1, 1), "x")
    w.t[prog.input] = x
    inputs = {"x": x}
    delays = prog.ring_delays()
    for name, ds in delays.items():
        for d in ds:
            inputs[tap_name(name, d)] = w.act(name, (1, 1, prog.tensors[name].channels), tap_name(name, d))
    for op in prog.ops:
        w.write_op(op, [w.t[n] if d == 0 else inputs[tap_name(n, d)] for n, d in op.inputs])
    outputs = {"y": w.t[prog.output]}
    for name in delays:
        if name != prog.input:
            outputs[push_name(name)] = w.t[name]
    w.b.signature("serving_default", inputs=inputs, outputs=outputs)
    return w.b.build()

"""Numpy engines for a Program: streaming with true ring buffers, and whole-sequence.

The integer engine calls the TFLM-exact kernels in `edgewave.integer`, so its
output is what TensorFlow Lite Micro (and the generated C) must produce. The
two modes share every op; they differ only in where taps come from: a ring
buffer (streaming) or the same tensor shifted in time with zero-point padding
(whole sequence, what `model_full.tflite` computes).
"""

from __future__ import annotations

import numpy as np

from . import integer as K
from .convert.program import Program


class Ring:
    """The last `length` vectors of one tensor. `head` is the next slot to write.

    The position is kept modulo the length, never as a growing counter, so it
    cannot drift or overflow however long the stream runs.
    """

    def __init__(self, length: int, channels: int, fill, dtype):
        self.buf = np.full((length, channels), fill, dtype)
        self.head = 0

    def read(self, delay: int) -> np.ndarray:
        return self.buf[(self.head - delay) % len(self.buf)]

    def push(self, v: np.ndarray) -> None:
        self.buf[self.head] = v
        self.head = (self.head + 1) % len(self.buf)


def _float_op(op, xs):
    if op.kind == "fc":
        y = np.concatenate(xs, -1) @ op.weights.T + op.bias
        return np.maximum(y, 0) if op.activation == "RELU" else y
    if op.kind == "tanh":
        return np.tanh(xs[0])
    if op.kind == "logistic":
        return 1.0 / (1.0 + np.exp(-xs[0]))
    if op.kind == "relu":
        return np.maximum(xs[0], 0)
    if op.kind == "requant":
        return xs[0]
    if op.kind == "add":
        return xs[0] + xs[1]
    if op.kind == "mul":
        return xs[0] * xs[1]
    if op.kind == "concat":
        return np.concatenate(xs, -1)
    if op.kind == "avgpool":
        return np.mean(xs, 0)
    if op.kind == "maxpool":
        return np.max(xs, 0)
    raise AssertionError(op.kind)


def _int_op(prog: Program, op, xs):
    T = prog.tensors
    qin = [T[name].q for name, _ in op.inputs]
    qout = T[op.output].q
    if op.kind == "fc":
        x = np.concatenate(xs, -1)
        return K.fully_connected(x, op.weights, op.bias, qin[0], op.weight_scales, qout, op.activation)
    if op.kind == "tanh":
        return K.tanh(xs[0], qin[0], qout)
    if op.kind == "logistic":
        return K.logistic(xs[0], qin[0], qout)
    if op.kind == "relu":
        return K.relu(xs[0], qin[0], qout)
    if op.kind == "requant":
        return K.requantize(xs[0], qin[0], qout, prog.dtype_of(op.output))
    if op.kind == "add":
        return K.add(xs[0], xs[1], qin[0], qin[1], qout)
    if op.kind == "mul":
        return K.mul(xs[0], xs[1], qin[0], qin[1], qout)
    if op.kind == "concat":
        return K.concatenation(xs, qin, qout, axis=-1)
    if op.kind in ("avgpool", "maxpool"):
        x = np.stack(xs, -2)[None, :, :, :] if xs[0].ndim == 2 else np.stack(xs, -2)[None, None]
        pool = K.average_pool_2d if op.kind == "avgpool" else K.max_pool_2d
        y = pool(x, qin[0], (1, len(xs)), (1, 1), out_q=qout)
        return y.reshape(xs[0].shape)
    raise AssertionError(op.kind)


class Engine:
    """Runs a program one sample at a time (`step`) or over a whole sequence (`run_sequence`)."""

    def __init__(self, program: Program):
        self.prog = program
        self._op = (lambda op, xs: _int_op(program, op, xs)) if program.quantized else _float_op
        self.reset()

    def reset(self, samples_seen: int = 0) -> None:
        """Back to the initial state. `samples_seen` only moves where each ring's head starts
        (as after that many samples), which must not change any output."""
        p = self.prog
        self.rings = {name: Ring(length, p.tensors[name].channels, p.zero_code(name), p.dtype_of(name))
                      for name, length in p.ring_lengths().items()}
        for ring in self.rings.values():
            ring.head = samples_seen % len(ring.buf)

    # -- streaming ----------------------------------------------------------------
    def step(self, x) -> np.ndarray:
        """One input code (or float) in, the output vector for this time step out."""
        p = self.prog
        values = {p.input: np.asarray([x], p.input_dtype)}
        for op in p.ops:
            xs = [values[n] if d == 0 else self.rings[n].read(d) for n, d in op.inputs]
            values[op.output] = np.asarray(self._op(op, xs), p.dtype_of(op.output))
        for name, ring in self.rings.items():
            ring.push(values[name])
        return values[p.output]

    def stream(self, xs: np.ndarray) -> np.ndarray:
        return np.stack([self.step(x) for x in xs])

    # -- whole sequence -------------------------------------------------------------
    def run_sequence(self, xs: np.ndarray, keep: bool = False):
        """All time steps at once, from the initial (zero) state. keep=True also returns every tensor."""
        p = self.prog
        values = {p.input: np.asarray(xs, p.input_dtype).reshape(-1, 1)}
        n = len(values[p.input])
        for op in p.ops:
            xs_ = [values[name] if d == 0 else _delayed(values[name], d, p.zero_code(name)) for name, d in op.inputs]
            values[op.output] = np.asarray(self._op(op, xs_), p.dtype_of(op.output)).reshape(n, -1)
        return (values[p.output], values) if keep else values[p.output]


def _delayed(x: np.ndarray, d: int, fill) -> np.ndarray:
    out = np.full_like(x, fill)
    if d < len(x):
        out[d:] = x[:len(x) - d]
    return out

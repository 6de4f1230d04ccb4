"""Numpy engines for a Program: streaming with true ring buffers, and whole-sequence.

The integer engine calls the TFLM-exact kernels in `edgewave.integer`, so its
output is what TensorFlow Lite Micro (and the generated C) must produce. The
two modes share every op; they differ only in where taps come from: a ring
buffer (streaming) or the same tensor shifted in time with zero-point padding
(whole sequence, what `model_full.tflite` computes).

`step` is the reference: one sample through every op, as the device runs it.
The whole-sequence mode (`run`, `run_sequence`) runs the program op by op over
blocks of `chunk` samples: an op's tap at delay d reads its input shifted by d
samples, the last d values of the previous block (at the start, the rings'
initial zero points) in front. It computes the same integers as `step` with
faster forms of the same kernels, equal by construction: every elementwise
integer op is a table of the kernel over all its inputs (256 or 65 536 codes;
int8 ADD and MUL over all 65 536 pairs), and FULLY_CONNECTED takes its int64
accumulators from an exact float64 matrix product before the kernel's own
requantization. Blocks bound the memory for long signals; where they end does
not change a result, and `run` leaves the rings exactly as `step` would have,
so a stream can go on sample by sample (generation, concealment) or by blocks.
"""

from __future__ import annotations

import numpy as np

from . import integer as K
from .program import Program

CHUNK = 4096  # samples per block of the whole-sequence mode


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

    def history(self) -> np.ndarray:
        """The ring's contents oldest first: row -k is the value pushed k steps ago."""
        return np.roll(self.buf, -self.head, axis=0)

    def advance(self, history: np.ndarray, steps: int) -> None:
        """The state after `steps` more pushes whose last `length` values, oldest first, are `history`."""
        self.head = (self.head + steps) % len(self.buf)
        self.buf[...] = np.roll(history, self.head, axis=0)


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
        return K.fully_connected(x, op.weights, op.bias, qin[0], op.weight_scales, qout, op.activation,
                                 prog.fc_as_conv(op))
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


# -- whole-sequence forms of the integer ops ------------------------------------------

def _all_codes(dtype) -> np.ndarray:
    """Every value of an int8/int16 type, in the order of its unsigned view (so the unsigned
    view of a code indexes a table built from this)."""
    unsigned = np.uint8 if np.dtype(dtype) == np.int8 else np.uint16
    return np.arange(np.iinfo(unsigned).max + 1, dtype=unsigned).view(dtype)


def _unsigned(x: np.ndarray) -> np.ndarray:
    return x.view(np.uint8 if x.dtype == np.int8 else np.uint16)


def _sequence_int_op(prog: Program, op):
    """A function from this op's taps over a block ([m, C] each) to its output [m, C_out], equal
    to `_int_op` row by row."""
    in_dtype = np.dtype(prog.dtype_of(op.inputs[0][0]))
    out_dtype = np.dtype(prog.dtype_of(op.output))
    if op.kind == "fc":
        qin = prog.tensors[op.inputs[0][0]].q
        p = K.fc_params(qin, op.weight_scales, prog.tensors[op.output].q, op.activation, in_dtype,
                        prog.fc_as_conv(op))
        w_t = np.ascontiguousarray(op.weights.astype(np.float64).T)
        zp_in = p.zp_in if in_dtype == np.int8 else 0  # int16x8 ignores the zero point (0 anyway)
        bias = op.bias

        def fc(xs):
            x = np.empty((len(xs[0]), w_t.shape[0]), np.float64)
            col = 0
            for v in xs:
                x[:, col:col + v.shape[1]] = v
                col += v.shape[1]
            return K.fc_requantize(K.fc_dot_exact(x, w_t, zp_in), bias, p, in_dtype)
        return fc
    if op.kind in ("tanh", "logistic", "relu", "requant"):
        table = np.asarray(_int_op(prog, op, [_all_codes(in_dtype)]), out_dtype)
        return lambda xs: table[_unsigned(xs[0])]
    if op.kind in ("add", "mul") and in_dtype == np.int8:
        codes = _all_codes(np.int8)
        a, b = np.repeat(codes, 256), np.tile(codes, 256)  # pair (a, b) at index 256·u(a) + u(b)
        table = np.asarray(_int_op(prog, op, [a, b]), out_dtype)

        def pairs(xs):
            return table[(_unsigned(xs[0]).astype(np.intp) << 8) | _unsigned(xs[1])]
        return pairs
    if op.kind in ("add", "mul"):
        qa, qb, qout = (prog.tensors[n].q for n in (op.inputs[0][0], op.inputs[1][0], op.output))
        if op.kind == "add":
            p = K.add_params(qa, qb, qout, in_dtype)
            return lambda xs: K.add_eval(xs[0], xs[1], p)
        p = K.mul_params(qa, qb, qout, in_dtype)
        return lambda xs: K.mul_eval(xs[0], xs[1], p)
    return lambda xs: _int_op(prog, op, xs)


class Engine:
    """Runs a program one sample at a time (`step`) or over a whole sequence (`run`, `run_sequence`)."""

    def __init__(self, program: Program, chunk: int = CHUNK):
        self.prog = program
        self.chunk = chunk
        self._op = (lambda op, xs: _int_op(program, op, xs)) if program.quantized else _float_op
        self._seq_ops = None
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
    def run(self, xs: np.ndarray, chunk: int | None = None) -> np.ndarray:
        """`stream(xs)` computed as a whole sequence: the outputs of len(xs) more steps from the
        current state, which it leaves exactly as those steps would (stepping can go on)."""
        history = {name: ring.history() for name, ring in self.rings.items()}
        out, _ = self._blocks(xs, history, chunk, keep=False)
        for name, ring in self.rings.items():
            ring.advance(history[name], len(out))
        return out

    def run_sequence(self, xs: np.ndarray, keep: bool = False, chunk: int | None = None):
        """All time steps at once, from the initial (zero) state; the engine's own stream state is
        left alone. keep=True also returns every tensor over the whole sequence."""
        p = self.prog
        history = {name: np.full((length, p.tensors[name].channels), p.zero_code(name), p.dtype_of(name))
                   for name, length in p.ring_lengths().items()}
        out, values = self._blocks(xs, history, chunk, keep)
        return (out, values) if keep else out

    def after(self, xs: np.ndarray) -> tuple[np.ndarray, dict]:
        """The last output and the ring histories (oldest first) after streaming xs from the
        initial state; the engine's own stream state is left alone. A feed-forward program
        forgets what lies more than its receptive field plus its longest ring back, so this
        over that much context gives the exact state of any longer stream at that point."""
        p = self.prog
        history = {name: np.full((length, p.tensors[name].channels), p.zero_code(name), p.dtype_of(name))
                   for name, length in p.ring_lengths().items()}
        out, _ = self._blocks(xs, history, None, keep=False)
        return out[-1], history

    def context_length(self) -> int:
        """How many samples before a point determine the rings there (see `after`)."""
        return self.prog.receptive_field() + max(self.prog.ring_lengths().values(), default=0)

    def batch(self, histories: list[dict], steps: int) -> "BatchStream":
        """Independent streams, one per history, stepped together for at most `steps` samples."""
        self._compile()
        return BatchStream(self, histories, steps)

    def _compile(self):
        p = self.prog
        if self._seq_ops is None:
            self._seq_ops = [(lambda xs, op=op: _float_op(op, xs)) for op in p.ops] if not p.quantized else \
                [_sequence_int_op(p, op) for op in p.ops]

    def _blocks(self, xs, history: dict, chunk: int | None, keep: bool):
        """Runs blocks of `chunk` samples; `history` (tensor -> its last ring-length values, oldest
        first) is updated in place to the state after the last sample."""
        p = self.prog
        self._compile()
        lengths = p.ring_lengths()
        xs = np.asarray(xs, p.input_dtype).reshape(-1)
        chunk = max(int(chunk or self.chunk), 1)
        outs, kept = [], {}
        for start in range(0, len(xs), chunk):
            block = xs[start:start + chunk].reshape(-1, 1)
            m = len(block)
            padded: dict[str, np.ndarray] = {}  # tensor -> its history then this block
            values = {}

            def store(name, v):
                v = np.asarray(v, p.dtype_of(name)).reshape(m, -1)
                if name in lengths:
                    padded[name] = np.concatenate([history[name], v])
                    v = padded[name][lengths[name]:]
                values[name] = v

            store(p.input, block)
            for op, fn in zip(p.ops, self._seq_ops):
                taps = [values[n] if d == 0 else padded[n][lengths[n] - d:lengths[n] - d + m] for n, d in op.inputs]
                store(op.output, fn(taps))
            for name, length in lengths.items():
                history[name] = padded[name][-length:].copy()
            outs.append(values[p.output])
            if keep:
                for name, v in values.items():
                    kept.setdefault(name, []).append(v)
        if not outs:
            empty = {name: np.zeros((0, t.channels), p.dtype_of(name)) for name, t in p.tensors.items()}
            return empty[p.output], empty
        return np.concatenate(outs), {name: np.concatenate(v) for name, v in kept.items()}


class BatchStream:
    """B streams stepped in lockstep: one step of all of them costs about one step of one, so
    many short free-running stretches (concealed gaps) run at the speed of the longest. Each
    stream's rings start from its own history and grow by one row per step, so a tap at delay
    d is row L + s - d at step s: the same values `step` reads from its ring."""

    def __init__(self, engine: Engine, histories: list[dict], steps: int):
        p = engine.prog
        self.prog, self.ops = p, list(zip(p.ops, engine._seq_ops))
        self.lengths = p.ring_lengths()
        self.bufs = {}
        for name, length in self.lengths.items():
            buf = np.empty((len(histories), length + steps, p.tensors[name].channels), p.dtype_of(name))
            buf[:, :length] = np.stack([h[name] for h in histories])
            self.bufs[name] = buf
        self.s = 0

    def step(self, x: np.ndarray) -> np.ndarray:
        """One input per stream [B] in, each stream's output vector [B, C] out."""
        p, s = self.prog, self.s
        values = {p.input: np.asarray(x, p.input_dtype).reshape(-1, 1)}
        for op, fn in self.ops:
            taps = [values[n] if d == 0 else self.bufs[n][:, self.lengths[n] + s - d] for n, d in op.inputs]
            values[op.output] = np.asarray(fn(taps), p.dtype_of(op.output)).reshape(len(taps[0]), -1)
        for name, length in self.lengths.items():
            self.bufs[name][:, length + s] = values[name]
        self.s += 1
        return values[p.output]

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
faster forms of the same kernels, equal by construction: every one-input
elementwise integer op is a table of the kernel over all its inputs (256 or
65 536 codes), int8 ADD and MUL tables over all 65 536 pairs; FULLY_CONNECTED
takes its int64 accumulators from an exact float64 matrix product, and its
requantization, like int16 ADD's and MUL's, is the kernel's arithmetic
rearranged into fewer numpy calls (`_rescaler`). Blocks bound the memory for
long signals; where they end does not change a result, and `run` leaves the
rings exactly as `step` would have, so a stream can go on sample by sample
(generation, concealment) or by blocks.
"""

from __future__ import annotations

import numpy as np

from . import integer as K
from .integer import fixedpoint as fp
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


# The forms below are for B streams of a dozen channels, where the number of numpy calls is the
# cost (about half a microsecond each) and a call costs about twice as much again when an operand
# must be broadcast or cast: so every operand is int64 and either 0-d or of the input's shape.

def _i64(v) -> np.ndarray:
    return np.asarray(v, np.int64)


_NUDGE, _31, _63 = _i64(1 << 30), _i64(31), _i64(63)


class _Tiled:
    """Per-channel constants ([C]; 0-d ones stay 0-d) repeated to an input's shape [..., C]. A
    batch, like a run's full blocks, keeps one shape, so the last tiling is kept."""

    def __init__(self, *consts):
        self.consts, self.shape, self.tiled = consts, None, consts

    def __call__(self, shape):
        if shape != self.shape:
            self.shape = shape
            self.tiled = [np.broadcast_to(c, shape).copy() if c.ndim else c for c in self.consts]
        return self.tiled


def _wrap32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.int32).astype(np.int64)


def _rescaler(mult, shift, offset=0):
    """`fp.multiply_by_quantized_multiplier(x, mult, shift) + offset` for int64 x of int32 values
    (mult, shift, offset scalars or one per channel), in seven numpy calls instead of about
    twenty-five. Equal by algebra: gemmlowp's nudge and truncating division by 2**31 is
    (a·b + 2**30) >> 31 for either sign; RoundingDivideByPOT's remainder test is adding 2**(r-1),
    less one for negatives, before the shift; and adding the offset after the shift is adding it
    shifted before. Only SaturatingRoundingDoublingHighMul's saturation at a = b = INT32_MIN is not
    in this form, so such a multiplier (QuantizeMultiplier makes none) takes the kernel."""
    m, shift = _i64(mult), _i64(shift)
    if (m == fp.INT32_MIN).any():
        return lambda x: fp.multiply_by_quantized_multiplier(x, mult, shift) + offset
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    add = ((_i64(1) << right) >> 1) + (_i64(offset) << right)
    away = -(right > 0).astype(np.int64)  # all ones where a right shift rounds negatives away from zero
    shifts_left, every_right = bool(left.any()), bool(away.all())
    tiled = _Tiled(m, add, right, away, left)

    def rescale(x):
        m, add, right, away, left = tiled(x.shape)
        if shifts_left:
            x = _wrap32(x << left)  # the C shift's int32 wrap
        h = (x * m + _NUDGE) >> _31
        return (h + add + (h >> _63 if every_right else (h >> _63) & away)) >> right
    return rescale


def _clamper(lo: int, hi: int, dtype):
    lo, hi = _i64(lo), _i64(hi)
    return lambda x: np.minimum(np.maximum(x, lo), hi).astype(dtype)  # np.clip's wrapper costs more


def _fc_requantizer(p, bias, in_dtype, w_t: np.ndarray, zp_in: int, out_dtype):
    """A function of the dot products Σ w·x ([m, N], int64) equal to `K.fc_requantize` of
    `K.fc_dot_exact(x, w_t, zp_in)` (cast to out_dtype), with its constants computed once: the
    zero point's zp·Σ w is folded into the bias (int64 sums agree in any order), and an int32 wrap
    is left out where the largest accumulator the weights allow cannot wrap. None where
    fc_requantize would raise."""
    mult, shift = (_i64(v) for v in p.per_channel(w_t.shape[1]))
    w = w_t.astype(np.int64)
    b = (0 if bias is None else _i64(bias)) - zp_in * w.sum(0)
    x_max = 32768 if in_dtype == np.int16 else max(128 + zp_in, 127 - zp_in)  # largest |x - zp|
    acc_max = [int(v) for v in np.abs(w).sum(0) * x_max]  # of |Σ w·(x - zp)| per column
    # the activation range lies within in_dtype: one cast is the kernel's to it and the engine's from it
    clamp = _clamper(p.act_min, p.act_max, out_dtype)
    if in_dtype == np.int16 and not (bias is not None and np.asarray(bias).dtype == np.int32):
        if shift.max(initial=0) > 14:
            return None
        # multiply_by_quantized_multiplier_int64: a 16-bit multiplier, one rounding; (acc + b)·r + round
        # is acc·r + (b·r + round) in int64 arithmetic (modulo 2**64 like the kernel's)
        reduced = np.where(mult < 0x7FFF0000, (mult + (1 << 15)) >> 16, 0x7FFF)
        total = 15 - shift
        c = b * reduced + (_i64(1) << (total - 1))
        ends = [(s * a * int(r) + int(k)) >> int(t) for a, r, k, t in zip(acc_max, reduced, c, total) for s in (-1, 1)]
        wraps = max(a * abs(int(r)) + abs(int(k)) for a, r, k in zip(acc_max, reduced, c)) >= 1 << 63 or \
            not -(1 << 31) <= min(ends) <= max(ends) < 1 << 31
        tiled = _Tiled(reduced, c, total)

        def wide(acc):
            reduced, c, total = tiled(acc.shape)
            v = (acc * reduced + c) >> total
            return clamp(_wrap32(v) if wraps else v)
        return wide
    rescale = _rescaler(mult, shift, p.zp_out if in_dtype == np.int8 else 0)
    wraps = max(a + abs(int(k)) for a, k in zip(acc_max, b)) >= 1 << 31
    tiled = _Tiled(b)

    def narrow(acc):
        acc = acc + tiled(acc.shape)[0]
        return clamp(rescale(_wrap32(acc) if wraps else acc))
    return narrow


def _sequence_int_op(prog: Program, op):
    """A function from this op's taps over a block ([m, C] each) to its output [m, C_out] in the
    output's dtype, equal to `_int_op` row by row."""
    in_dtype = np.dtype(prog.dtype_of(op.inputs[0][0]))
    out_dtype = np.dtype(prog.dtype_of(op.output))
    if op.kind == "fc":
        qin = prog.tensors[op.inputs[0][0]].q
        p = K.fc_params(qin, op.weight_scales, prog.tensors[op.output].q, op.activation, in_dtype,
                        prog.fc_as_conv(op))
        w_t = np.ascontiguousarray(op.weights.astype(np.float64).T)
        zp_in = p.zp_in if in_dtype == np.int8 else 0  # int16x8 ignores the zero point (0 anyway)
        requant, zp_dot = _fc_requantizer(p, op.bias, in_dtype, w_t, zp_in, out_dtype), 0
        if requant is None:  # the kernel itself, which raises
            requant, zp_dot = (lambda acc: K.fc_requantize(acc, op.bias, p, in_dtype).astype(out_dtype)), zp_in

        def fc(xs):
            x = xs[0] if len(xs) == 1 else np.concatenate(xs, -1)
            return requant(K.fc_dot_exact(x, w_t, zp_dot))
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
    if op.kind in ("add", "mul"):  # int16: tables of pairs would be too large
        qa, qb, qout = (prog.tensors[n].q for n in (op.inputs[0][0], op.inputs[1][0], op.output))
    if op.kind == "add":
        p = K.add_params(qa, qb, qout, in_dtype)
        codes = _all_codes(in_dtype).astype(np.int64)

        def scaled(zp, m, s):  # add_eval's rescaling of one input, as a table over its codes
            return fp.multiply_by_quantized_multiplier(fp.wrap_int32((codes - zp) << p.left_shift), m, s)
        ta, tb = scaled(p.zp_a, p.mult_a, p.shift_a), scaled(p.zp_b, p.mult_b, p.shift_b)
        wraps = int(np.abs(ta).max()) + int(np.abs(tb).max()) >= 1 << 31
        rescale, clamp = _rescaler(p.mult_out, p.shift_out, p.zp_out), _clamper(p.act_min, p.act_max, out_dtype)

        def add(xs):
            raw_sum = ta[_unsigned(xs[0])] + tb[_unsigned(xs[1])]
            return clamp(rescale(_wrap32(raw_sum) if wraps else raw_sum))
        return add
    if op.kind == "mul":
        p = K.mul_params(qa, qb, qout, in_dtype)  # int16: zero points 0 (it raises otherwise)
        rescale, clamp = _rescaler(p.mult, p.shift, p.zp_out), _clamper(p.act_min, p.act_max, out_dtype)

        def mul(xs):  # int16 products fit int32 exactly: the kernel's wrap changes nothing
            return clamp(rescale(xs[0].astype(np.int64) * xs[1].astype(np.int64)))
        return mul
    return lambda xs: np.asarray(_int_op(prog, op, xs), out_dtype).reshape(len(xs[0]), -1)


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
            self._seq_ops = [(lambda xs, op=op, t=p.dtype_of(op.output):
                              np.asarray(_float_op(op, xs), t).reshape(len(xs[0]), -1)) for op in p.ops] \
                if not p.quantized else [_sequence_int_op(p, op) for op in p.ops]

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
    d is row L + s - d at step s: the same values `step` reads from its ring.

    A step is a few hundred numpy calls on small arrays, so their number is its cost: where each
    tap lives is worked out here once, and a ring tensor's row is written as soon as it is
    computed, so that an op's taps of one tensor at evenly spaced delays are one strided slice."""

    def __init__(self, engine: Engine, histories: list[dict], steps: int):
        p = engine.prog
        lengths = p.ring_lengths()
        self.bufs = {}
        for name, length in lengths.items():
            buf = np.empty((len(histories), length + steps, p.tensors[name].channels), p.dtype_of(name))
            buf[:, :length] = np.stack([h[name] for h in histories])
            self.bufs[name] = buf
        slot = {name: i for i, name in enumerate([p.input] + [op.output for op in p.ops])}
        ring = {slot[name]: (buf, lengths[name]) for name, buf in self.bufs.items()}
        self._ops = []
        for op, fn in zip(p.ops, engine._seq_ops):
            rows = [lengths.get(n, 0) - d for n, d in op.inputs]  # at step 0
            first = op.inputs[0][0]
            if op.kind == "fc" and first in lengths and len(rows) > 1 and all(n == first for n, _ in op.inputs) \
                    and rows[1] > rows[0] and len(set(np.diff(rows))) == 1:
                # the taps side by side in tap order, as FULLY_CONNECTED concatenates them
                taps = (self.bufs[first], rows[0], rows[-1] + 1, rows[1] - rows[0])
            else:
                taps = [(slot[n], None, 0) if d == 0 else (None, self.bufs[n], r) for (n, d), r in zip(op.inputs, rows)]
            self._ops.append((fn, taps, slot[op.output], ring.get(slot[op.output])))
        self._input = (np.dtype(p.input_dtype), ring.get(0))
        self._vals, self._out = [None] * len(slot), slot[p.output]
        self.s = 0

    def step(self, x: np.ndarray) -> np.ndarray:
        """One input per stream [B] in, each stream's output vector [B, C] out."""
        s, vals = self.s, self._vals
        dtype, ring = self._input
        v = vals[0] = np.asarray(x, dtype).reshape(-1, 1)
        if ring is not None:
            ring[0][:, ring[1] + s] = v
        n = len(v)
        for fn, taps, out, ring in self._ops:
            if type(taps) is tuple:
                buf, start, stop, stride = taps
                xs = [buf[:, start + s:stop + s:stride].reshape(n, -1)]
            else:
                xs = [vals[i] if buf is None else buf[:, row + s] for i, buf, row in taps]
            v = vals[out] = fn(xs)
            if ring is not None:
                ring[0][:, ring[1] + s] = v
        self.s += 1
        return vals[self._out]

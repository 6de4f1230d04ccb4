"""Concealment by the model: through a gap it runs on its own predictions, then fades back.

The model's input is always the signal that is played out. In a received frame
that is the received sample; in a lost one, the model's prediction of it (fed
back as the next input: the ring state simply goes on through the gap, as on the
device); for the first `fade` samples after a gap, a linear cross-fade from the
prediction to the received signal. On integer backends every step of this is in
integers (`Rule`), so the emitted C (`NAME_conceal`, `NAME_crossfade`) plays the
same codes.

`conceal` computes what stepping the whole signal one sample at a time gives,
without doing so: received stretches need no stepping, and a gap's state depends
only on the last `Engine.context_length()` played samples, so gaps whose contexts
do not reach back into another unfinished gap are stepped together
(`Engine.batch`), wave after wave. `conceal_stepwise` is the sample-by-sample
reference it is tested against.
"""

from __future__ import annotations

import numpy as np

from .. import integer as K
from ..convert.pipeline import quantize_input
from ..engine import Engine
from ..metrics import mulaw_decode

FADE_ONE = 1 << 15  # fixed-point 1.0 of the cross-fade weights
MAX_FADE = 65535  # samples: NAME_resume's Q15 weights need (fade + 1) << 15 to fit 32 bits


def fade_weight(k: int, n: int) -> int:
    """Weight of the received signal at sample k (0-based) of an n-sample fade: (k+1)/(n+1) in Q15."""
    return ((k + 1) * FADE_ONE) // (n + 1)


class Rule:
    """What a step's outputs are fed back as, and how a fade blends, for one program."""

    def __init__(self, prog):
        self.prog = prog
        self.quantized = prog.quantized
        if prog.head == "mulaw":
            values = mulaw_decode(np.arange(2 ** prog.mulaw_bits), prog.mulaw_bits)
            self.levels = quantize_input(prog, values) if prog.quantized else values.astype(np.float32)
        elif prog.quantized:
            q_in, q_out = prog.tensors[prog.input].q, prog.tensors[prog.output].q
            # The output predicts the next input, on its own scale: rescale it as QUANTIZE would.
            self.rescale = K.requant_params(q_out, q_in, prog.input_dtype)
        self.silence = quantize_input(prog, np.zeros(1, np.float32))[0] if prog.quantized else np.float32(0)

    def feed(self, y: np.ndarray) -> np.ndarray:
        """Outputs [B, C] -> the next inputs [B] (greedy on a mu-law head: the most likely level)."""
        y = np.asarray(y)
        if self.prog.head == "mulaw":
            return self.levels[np.argmax(y, axis=-1)]
        if self.quantized:
            return K.requant_eval(y[..., 0], self.rescale, self.prog.input_dtype)
        return y[..., 0].astype(np.float32)

    def blend(self, received: np.ndarray, predicted: np.ndarray, weight) -> np.ndarray:
        """weight·received + (1 - weight)·predicted, weight in Q15; in integers with round half up,
        computed on offset (non-negative) codes so C needs no signed shifts."""
        w = np.asarray(weight, np.int64)
        if not self.quantized:
            return ((w * received + (FADE_ONE - w) * predicted) / FADE_ONE).astype(np.float32)
        off = -int(np.iinfo(self.prog.input_dtype).min)
        r = np.asarray(received, np.int64) + off
        p = np.asarray(predicted, np.int64) + off
        return ((w * r + (FADE_ONE - w) * p + FADE_ONE // 2) >> 15) - off


def gaps(lost: np.ndarray) -> list[tuple[int, int]]:
    """Runs of lost samples as (start, end), end exclusive."""
    edges = np.diff(np.concatenate([[0], lost.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def plan(lost: np.ndarray, fade: int) -> list[tuple[int, int, int]]:
    """(start, gap end, fade end) for every gap. Lost samples before the first received one are
    silence, not a gap: there is nothing to continue yet."""
    out = []
    runs = gaps(lost)
    for i, (a, b) in enumerate(runs):
        if a == 0:
            continue
        nxt = runs[i + 1][0] if i + 1 < len(runs) else len(lost)
        out.append((int(a), int(b), int(min(b + fade, nxt))))
    return out


def concealed(lost: np.ndarray, fade: int) -> np.ndarray:
    """Samples whose played value comes from the model: the lost ones and the fades after gaps
    (elsewhere the played signal is the received one)."""
    mask = np.array(lost, bool)
    for _, b, e in plan(lost, fade):
        mask[b:e] = True
    return mask


def leading_silence(lost: np.ndarray) -> int:
    return int(np.argmin(lost)) if not lost.all() else len(lost)


def conceal(prog, x: np.ndarray, lost: np.ndarray, fade: int) -> np.ndarray:
    """The played signal (model-domain inputs: codes or floats) for received inputs x with the
    per-sample mask `lost`; the values of x where lost are never read."""
    engine, rule = Engine(prog), Rule(prog)
    played = np.array(x, prog.input_dtype)
    played[:leading_silence(lost)] = rule.silence
    context = engine.context_length()
    todo = plan(lost, fade)
    wave_of = _waves(todo, context)
    for wave in range(max(wave_of, default=-1) + 1):
        batch = [g for g, w in zip(todo, wave_of) if w == wave]
        states = [engine.after(played[max(0, a - context):a]) for a, _, _ in batch]
        stream = engine.batch([h for _, h in states], max(e - a for a, _, e in batch))
        y = np.stack([last for last, _ in states])
        for s in range(max(e - a for a, _, e in batch)):
            inp = rule.feed(y)
            for i, (a, b, e) in enumerate(batch):
                t = a + s
                if t < b:
                    played[t] = inp[i]
                elif t < e:
                    played[t] = inp[i] = rule.blend(x[t], inp[i], fade_weight(t - b, fade))
            y = stream.step(inp)
    return played


def _waves(todo, context: int) -> list[int]:
    """A gap waits for every earlier gap (fade included) that ends inside its context."""
    wave = []
    for j, (a, _, _) in enumerate(todo):
        deps = [wave[i] for i in range(j) if todo[i][2] > a - context]
        wave.append(1 + max(deps) if deps else 0)
    return wave


def conceal_stepwise(prog, x: np.ndarray, lost: np.ndarray, fade: int) -> np.ndarray:
    """`conceal` by stepping every sample through the reference `Engine.step`, as the device does."""
    engine, rule = Engine(prog), Rule(prog)
    played = np.array(x, prog.input_dtype)
    played[:leading_silence(lost)] = rule.silence
    ends = {a: (b, e) for a, b, e in plan(lost, fade)}
    y, t = None, 0
    while t < len(x):
        if t in ends:
            b, e = ends[t]
            for u in range(t, e):
                v = rule.feed(y[None])[0]
                played[u] = v if u < b else rule.blend(x[u], v, fade_weight(u - b, fade))
                y = engine.step(played[u])
            t = e
        else:
            y = engine.step(played[t])
            t += 1
    return played

"""Classic packet-loss concealers: zero fill, frame repetition and ITU-T G.711 Appendix I.

Every concealer is ``f(x, lost, frame_len, rate) -> y``: `x` is the received signal as
float64 at any scale, `lost` the per-frame bool pattern (True = lost, see
`edgewave.plc.loss`), `y` the played-out signal, aligned sample for sample with `x`.
The samples of lost frames in `x` are never read: each concealer starts from
`_received_only`, which copies the received samples and nothing else.

G.711 Appendix I (1999), "A high quality low-complexity algorithm for packet loss
concealment with G.711", as implemented here. What follows the standard (lengths at
8 kHz; at other rates every length is scaled by rate/8000 and rounded, so 16 kHz
doubles them all, the coarse search's lag step included: at 16 kHz it reads every
fourth sample and lag, the same 4 kHz signal and lag grid in time as at 8 kHz, and the
fine search covers the 3 lags either side):

- a 48.75 ms history (390 samples) of the played-out signal, zeros before the start;
- at the first lost sample, the pitch from the normalised cross-correlation of the last
  20 ms (160 samples) with the history 40..120 samples earlier: a coarse search over
  every second lag on the 2:1 decimated signal, ties going to the shorter period, then
  a full-rate search of the lags next to the coarse best, ties going to the longer one;
  each candidate's correlation is divided by the square root of its energy, floored;
- the last pitch period is repeated; its last quarter period (P >> 2 samples) is
  overlap-added with the quarter period before the period, so the loop wraps without a
  click, and that overlap-added quarter period replaces the last received samples before
  the erasure (which is why the standard delays its output by 3.75 ms, POVERLAPMAX);
- 10 ms into the erasure the loop grows to 2 periods, 20 ms in to 3 (going on at the same
  phase, one period further back), each switch cross-faded over a quarter period;
- the gain is 1 for the first 10 ms and then falls linearly by 20 % per 10 ms, reaching
  silence at 60 ms;
- at the first received sample the synthetic signal, continued, is cross-faded into the
  received one over P/4 plus 4 ms (32 samples) for each 10 ms of erasure after the first,
  at most 10 ms, the synthetic side scaled by the gain reached at the end of the erasure;
- cross-fades are linear with weights (i + 1) / n, as in the reference code.

Deviations:

- Offline and aligned: the standard's output is delayed by 3.75 ms so that the
  overlap-add before an erasure can still change samples not yet played; here the whole
  signal is at hand, so `g711_appendix_i` returns that delayed output shifted back by
  the delay. Received samples are exactly `x` except the P/4 samples before and the
  end-of-erasure cross-fade after each erasure.
- Sample timing instead of 10 ms blocks, so any frame length works. An erasure is a
  run of lost samples of any length D; the events the standard places at 10 ms block
  boundaries (period switches at 10 and 20 ms, the gain ramp, silence from 60 ms) sit at
  the same times from the erasure's first sample. The end cross-fade counts the 10 ms
  steps the erasure started (ceil(D / 10 ms)) and uses the gain reached at D; for D a
  multiple of 10 ms all of this is exactly the block-wise standard. Two cases the
  block-wise standard cannot meet are decided here: a cross-fade that would outlast the
  received run before the next erasure is cut to that run, and a period switch whose
  cross-fade the erasure's end interrupts finishes in the continued synthetic signal
  that the end cross-fade uses.
- float64 throughout: no 16-bit rounding or clipping. The correlation's energy floor
  (CORRMINPOWER, 250 on the 16-bit scale at 8 kHz) is taken relative to the history's
  peak (as if that peak were 16-bit full scale) and scaled by rate/8000 with the number
  of samples summed, so the result does not depend on the signal's scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .loss import frame_mask


def _check_inputs(x: np.ndarray, lost: np.ndarray, frame_len: int, rate: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, np.float64)
    if x.ndim != 1:
        raise UserError(f"the signal has shape {x.shape}; pass one channel as a 1-D array")
    _check_rate(rate)
    return x, frame_mask(lost, frame_len, x.size)


def _check_rate(rate: int) -> int:
    if int(rate) < 4000:  # below it the standard's shortest lengths round to nothing
        raise UserError(f"sample rate {rate} Hz is too low for concealment; use 8000 or 16000")
    return int(rate)


def _received_only(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """x with every lost sample zero, built by gathering only the received samples."""
    out = np.zeros_like(x)
    received = ~mask
    out[received] = x[received]
    return out


def zero_fill(x: np.ndarray, lost: np.ndarray, frame_len: int, rate: int) -> np.ndarray:
    """Lost frames are silence."""
    x, mask = _check_inputs(x, lost, frame_len, rate)
    return _received_only(x, mask)


def repeat_previous(x: np.ndarray, lost: np.ndarray, frame_len: int, rate: int) -> np.ndarray:
    """Each lost frame is a copy of the last received frame (zeros before any was received)."""
    x, mask = _check_inputs(x, lost, frame_len, rate)
    out = _received_only(x, mask)
    last = np.zeros(frame_len)
    for k, is_lost in enumerate(np.asarray(lost, bool)):
        frame = slice(k * frame_len, min((k + 1) * frame_len, x.size))
        n = frame.stop - frame.start
        if is_lost:
            out[frame] = last[:n]
        elif n == frame_len:
            last = out[frame].copy()
        # a received partial frame is the signal's last, so nothing is ever repeated from it
    return out


# ---------------------------------------------------------------- G.711 Appendix I

@dataclass(frozen=True)
class G711Lengths:
    """The standard's lengths (its #defines) in samples at one rate."""

    block: int        # FRAMESZ: the 10 ms step of every timing
    pitch_min: int    # PITCH_MIN: 200 Hz
    pitch_max: int    # PITCH_MAX: 66.7 Hz
    corr_len: int     # CORRLEN: 20 ms correlation window
    end_ola_step: int  # EOVERLAPINCR: 4 ms more end cross-fade per further 10 ms lost
    decimation: int   # NDEC: the coarse search's lag step, 2:1 decimation at 8 kHz
    min_power: float  # CORRMINPOWER relative to a 16-bit full scale of 1

    @classmethod
    def at(cls, rate: int) -> "G711Lengths":
        rate = _check_rate(rate)

        def scaled(n_at_8k: int) -> int:
            return int(round(n_at_8k * rate / 8000))
        return cls(block=scaled(80), pitch_min=scaled(40), pitch_max=scaled(120), corr_len=scaled(160),
                   end_ola_step=scaled(32), decimation=scaled(2), min_power=250.0 * rate / 8000 / 32767.0 ** 2)

    @property
    def overlap_max(self) -> int:   # POVERLAPMAX: the output delay, 3.75 ms
        return self.pitch_max >> 2

    @property
    def history(self) -> int:       # HISTORYLEN: 48.75 ms, three longest periods and an overlap
        return 3 * self.pitch_max + self.overlap_max


def _ola_weights(n: int) -> np.ndarray:
    """Weight of the incoming side at each sample of an n-sample linear cross-fade."""
    return np.arange(1, n + 1) / n


def g711_pitch(history: np.ndarray, rate: int) -> int:
    """The standard's pitch estimate (samples) from the played-out signal before an erasure.

    `history` ends at the last sample before the erasure; it is zero-padded on the left
    if shorter than the 35 ms the search reads.
    """
    return _find_pitch(np.asarray(history, np.float64), G711Lengths.at(int(rate)))


def _find_pitch(history: np.ndarray, c: G711Lengths) -> int:
    span = c.corr_len + c.pitch_max
    h = history[-span:]
    h = np.concatenate([np.zeros(span - h.size), h])
    target = h[-c.corr_len:]
    peak = float(np.max(np.abs(h)))
    floor = c.min_power * peak ** 2 if peak > 0 else 1.0  # all-zero history: any pitch conceals silence
    n_lags = c.pitch_max - c.pitch_min  # PITCHDIFF; candidate j lies pitch_max - j samples back

    def score(j: int, step: int) -> float:
        candidate = h[j:j + c.corr_len:step]
        energy = float(np.dot(candidate, candidate))
        return float(np.dot(candidate, target[::step])) / np.sqrt(max(energy, floor))

    step = c.decimation
    coarse = np.arange(0, n_lags + 1, step)
    scores = np.array([score(j, step) for j in coarse])
    best = int(coarse[len(coarse) - 1 - np.argmax(scores[::-1])])  # `>=`: the last maximum wins
    fine = np.arange(max(0, best - (step - 1)), min(n_lags, best + step - 1) + 1)
    scores = np.array([score(j, 1) for j in fine])
    best = int(fine[np.argmax(scores)])  # `>`: the first maximum wins
    return c.pitch_max - best


class _PitchLoop:
    """The standard's circular pitch buffer: the last `periods` periods of the history, looped."""

    def __init__(self, history: np.ndarray, pitch: int):
        self.buf = history.copy()
        self.pitch = pitch
        self.overlap = pitch >> 2
        self.last_quarter = self.buf[-self.overlap:].copy()  # the received tail, before any OLA
        self.offset = 0
        self.use_periods(1)

    def use_periods(self, periods: int) -> None:
        # Blend the tail toward the quarter period before the loop's start, so that the
        # jump from the buffer's end back to its start continues smoothly.
        self.length = periods * self.pitch
        start = self.buf.size - self.length
        q = self.overlap
        w = _ola_weights(q)
        self.buf[-q:] = (1.0 - w) * self.last_quarter + w * self.buf[start - q:start]

    def take(self, n: int) -> np.ndarray:
        start = self.buf.size - self.length
        out = self.buf[start + (self.offset + np.arange(n)) % self.length]
        self.offset = (self.offset + n) % self.length
        return out

    def grow(self, periods: int) -> np.ndarray:
        """Switch to more periods at the same phase; returns the old loop's next quarter period."""
        kept = self.offset
        old_tail = self.take(self.overlap)
        while kept > self.pitch:  # same phase, now within the first period of the longer loop
            kept -= self.pitch
        self.offset = kept
        self.use_periods(periods)
        return old_tail


def _gain(t: np.ndarray, c: G711Lengths) -> np.ndarray:
    """Full gain for 10 ms, then 20 % less per 10 ms: silence from 60 ms on."""
    return np.clip(1.0 - 0.2 * (np.asarray(t, np.float64) - c.block) / c.block, 0.0, 1.0)


def _synthesize(loop: _PitchLoop, n_lost: int, n_after: int, c: G711Lengths) -> np.ndarray:
    """Unscaled synthetic signal for n_lost samples of erasure and n_after of continuation."""
    switches = [k * c.block for k in (1, 2) if k * c.block < n_lost]
    edges = [0, *switches, n_lost + n_after]
    pieces = [loop.take(edges[1] - edges[0])]
    for periods, (a, b) in enumerate(zip(edges[1:-1], edges[2:]), start=2):
        old_tail = loop.grow(periods)
        piece = loop.take(b - a)
        m = min(loop.overlap, b - a)
        w = _ola_weights(loop.overlap)[:m]
        piece[:m] = (1.0 - w) * old_tail[:m] + w * piece[:m]
        pieces.append(piece)
    return np.concatenate(pieces)


def _lost_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of lost samples."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def g711_appendix_i(x: np.ndarray, lost: np.ndarray, frame_len: int, rate: int) -> np.ndarray:
    """ITU-T G.711 Appendix I concealment, aligned with x (see the module docstring)."""
    x, mask = _check_inputs(x, lost, frame_len, rate)
    c = G711Lengths.at(int(rate))
    out = _received_only(x, mask)
    runs = _lost_runs(mask)
    for i, (start, stop) in enumerate(runs):
        next_start = runs[i + 1][0] if i + 1 < len(runs) else x.size
        _conceal_run(out, start, stop, next_start - stop, c)
    return out


def _conceal_run(out: np.ndarray, start: int, stop: int, n_received_after: int, c: G711Lengths) -> None:
    """Conceal out[start:stop] in place from the played-out signal before it."""
    history = out[max(0, start - c.history):start]
    history = np.concatenate([np.zeros(c.history - history.size), history])
    loop = _PitchLoop(history, _find_pitch(history, c))

    # The quarter period before the erasure becomes the loop's overlap-added tail.
    q = min(loop.overlap, start)
    if q:
        out[start - q:start] = loop.buf[-q:]

    n_lost = stop - start
    steps_started = -(-n_lost // c.block)
    end_ola = min(loop.overlap + (steps_started - 1) * c.end_ola_step, c.block, n_received_after)
    synthetic = _synthesize(loop, n_lost, end_ola, c)
    out[start:stop] = synthetic[:n_lost] * _gain(np.arange(n_lost), c)

    if end_ola:
        w = _ola_weights(end_ola)
        fade_out = (1.0 - w) * float(_gain(n_lost, c))
        received = slice(stop, stop + end_ola)
        out[received] = fade_out * synthetic[n_lost:] + w * out[received]

"""Which frames a network loses: independent losses, or bursts from a Gilbert-Elliott model.

The burst model is the two-state Markov chain commonly used for VoIP traces, in its
simplified form: every packet is lost in the Bad state and none in the Good one. With
mean burst length B (frames) it leaves Bad with probability r = 1/B per frame, and it
enters Bad with p = loss / (B * (1 - loss)), the one value for which the stationary
share of Bad frames, p / (p + r), equals `loss`. The chain starts in its stationary
distribution, so the loss rate is `loss` from the first frame on, not only in the long run.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import UserError


def n_frames(n_samples: int, frame_len: int) -> int:
    """Frames needed to carry n_samples; a last partial frame is a frame too."""
    if int(frame_len) < 1:
        raise UserError(f"frame length {frame_len} samples is not positive; use e.g. 160 (10 ms at 16 kHz)")
    if int(n_samples) < 0:
        raise UserError(f"{n_samples} samples is negative; pass the signal's length")
    return -(-int(n_samples) // int(frame_len))


def frame_mask(lost: np.ndarray, frame_len: int, n_samples: int) -> np.ndarray:
    """Per-sample bool mask (True = lost) of a per-frame loss pattern."""
    lost = np.asarray(lost, bool)
    expected = n_frames(n_samples, frame_len)
    if lost.ndim != 1 or lost.size != expected:
        raise UserError(f"the loss pattern has {lost.size} frames but {n_samples} samples in frames of "
                        f"{frame_len} need {expected}; make it with lost_frames(n_frames(...), ...)")
    return np.repeat(lost, int(frame_len))[:int(n_samples)]


def _check_loss(loss: float) -> float:
    loss = float(loss)
    if not 0.0 <= loss < 1.0:  # also rejects NaN
        raise UserError(f"loss rate {loss} is outside [0, 1); give the share of lost frames, e.g. 0.1 for 10 %")
    return loss


def _check_burst(burst: float) -> float:
    burst = float(burst)
    if not (burst >= 1.0 and math.isfinite(burst)):
        raise UserError(f"mean burst length {burst} frames is below 1 (or not finite); "
                        "use 1 or more, e.g. 2")
    return burst


def gilbert_elliott_p(loss: float, burst: float) -> float:
    """P(Good -> Bad) that gives stationary loss rate `loss` with mean burst `burst` frames."""
    loss, burst = _check_loss(loss), _check_burst(burst)
    p = loss / (burst * (1.0 - loss))
    if p > 1.0:
        # The Good state must last at least one frame, so bursts of mean B cannot exceed
        # a loss share of B / (B + 1).
        raise UserError(f"loss {loss} with mean burst {burst} frames is impossible (Good runs would be "
                        f"shorter than one frame); use burst >= {loss / (1.0 - loss):.4g} "
                        f"or loss <= {burst / (burst + 1.0):.4g}")
    return p


def lost_frames(n_frames: int, loss: float, burst: float | None = None, seed: int = 0) -> np.ndarray:
    """Bool array of n_frames, True = lost; deterministic for a seed.

    Without `burst`, each frame is lost independently with probability `loss`; with
    `burst` (mean burst length in frames, >= 1), by the Gilbert-Elliott model above.
    """
    n = int(n_frames)
    if n < 0:
        raise UserError(f"{n_frames} frames is negative; pass the number of frames")
    loss = _check_loss(loss)
    rng = np.random.default_rng(seed)
    if burst is None:
        return rng.random(n) < loss
    p_enter = gilbert_elliott_p(loss, burst)
    return _gilbert_elliott(n, p_enter, 1.0 / float(burst), rng)


def _gilbert_elliott(n: int, p_enter: float, p_leave: float, rng: np.random.Generator) -> np.ndarray:
    lost = np.zeros(n, bool)
    if p_enter == 0.0:
        return lost
    # A state lasts a geometric number of frames (the chain is memoryless), so drawing
    # whole runs is the same chain as drawing frame by frame, with far fewer draws.
    bad = rng.random() < p_enter / (p_enter + p_leave)
    pos = 0
    while pos < n:
        run = int(rng.geometric(p_leave if bad else p_enter))
        if bad:
            lost[pos:pos + run] = True
        pos += run
        bad = not bad
    return lost

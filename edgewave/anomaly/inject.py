"""Synthetic anomalies with exact per-sample labels, and reading a user's label file."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from edgewave.errors import UserError

KINDS = ("flatline", "noise_burst", "gain_jump", "reversed")
GAIN = 2.5             # gain_jump factor, applied to the raw value so the level jumps too
NOISE_RMS = 1.0        # noise_burst RMS, relative to the signal's RMS about its mean
MAX_AUTO_PER_KIND = 5  # with per_kind=None: as many segments of each kind as fit, up to this


class Segment(NamedTuple):
    kind: str
    start: int
    end: int  # exclusive


def _segment_length(rate: float, duration_s: float) -> int:
    length = int(round(duration_s * rate))
    if length < 2:
        raise UserError(f"an anomaly of {duration_s} s at {rate} Hz is {length} samples; "
                        "give a duration of at least 2 samples")
    return length


def _check_kinds(kinds) -> tuple[str, ...]:
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise UserError(f"unknown anomaly kind(s) {unknown or 'none given'}; choose from {', '.join(KINDS)}")
    return kinds


def _per_kind_that_fits(available: int, length: int, n_kinds: int, per_kind: int | None) -> int:
    # Every segment needs a slot of twice its length: at least `length` normal samples before it,
    # so events stay separate and the score can settle back to normal between them.
    fits = available // (2 * length * n_kinds)
    wanted = min(fits, MAX_AUTO_PER_KIND) if per_kind is None else int(per_kind)
    if wanted < 1 or wanted > fits:
        raise UserError(f"{available} samples after start_after hold at most {fits} anomalies of each of "
                        f"{n_kinds} kind(s) at {length} samples each; use a longer signal, a shorter "
                        "duration_s, fewer kinds or a smaller per_kind")
    return wanted


def plan_segments(n: int, rate: float, kinds=KINDS, duration_s: float = 1.0, seed: int = 0,
                  start_after: int = 0, per_kind: int | None = None) -> list[Segment]:
    """Where each anomaly goes: equal slots after start_after, one segment at a random place in each."""
    kinds = _check_kinds(kinds)
    length = _segment_length(rate, duration_s)
    available = n - int(start_after)
    per_kind = _per_kind_that_fits(available, length, len(kinds), per_kind)
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.repeat(np.arange(len(kinds)), per_kind))  # interleave the kinds
    slot = available // len(order)
    segments = []
    for i, kind_index in enumerate(order):
        slot_start = int(start_after) + i * slot
        start = slot_start + int(rng.integers(length, slot - length + 1))
        segments.append(Segment(kinds[kind_index], start, start + length))
    return segments


def _apply(x: np.ndarray, segment: Segment, rng: np.random.Generator, noise_rms: float) -> None:
    part = slice(segment.start, segment.end)
    if segment.kind == "flatline":
        x[part] = x[segment.start]
    elif segment.kind == "noise_burst":
        x[part] = x[part] + rng.normal(0.0, noise_rms, segment.end - segment.start)
    elif segment.kind == "gain_jump":
        x[part] = x[part] * GAIN  # x is float: no clipping to an integer sample range
    elif segment.kind == "reversed":
        x[part] = x[part][::-1].copy()


def _float_copy(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise UserError(f"anomalies are injected into a 1-D signal, got shape {x.shape}")
    return x.copy() if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def inject_segments(x: np.ndarray, rate: float, kinds=KINDS, duration_s: float = 1.0, seed: int = 0,
                    start_after: int = 0, per_kind: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, list[Segment]]:
    """inject(), also returning the segments (kind, start, end) for per-kind evaluation."""
    out = _float_copy(x)
    segments = plan_segments(out.size, rate, kinds, duration_s, seed, start_after, per_kind)
    # The noise level comes from the clean signal, so it does not depend on the other anomalies.
    noise_rms = NOISE_RMS * float(np.std(out, dtype=np.float64))
    # Its own stream: the places depend only on the seed and the layout, never on the noise drawn.
    noise_rng = np.random.default_rng([seed, 1])
    labels = np.zeros(out.size, dtype=np.int8)
    for segment in segments:
        _apply(out, segment, noise_rng, noise_rms)
        labels[segment.start:segment.end] = 1
    return out, labels, segments


def inject(x: np.ndarray, rate: float, kinds=KINDS, duration_s: float = 1.0, seed: int = 0,
           start_after: int = 0, per_kind: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A copy of x with non-overlapping anomalous segments after `start_after`, and 0/1 labels.

    Kinds: flatline (hold the value at the segment start), noise_burst (add white noise at the
    signal's RMS about its mean), gain_jump (multiply by GAIN), reversed (time-reverse the
    segment). per_kind=None puts as many of each kind as fit, up to MAX_AUTO_PER_KIND.
    Samples outside the segments are bit-identical to x. Deterministic for a given seed.
    """
    out, labels, _ = inject_segments(x, rate, kinds, duration_s, seed, start_after, per_kind)
    return out, labels


def load_labels(path, n: int) -> np.ndarray:
    """Per-sample labels from a text file with one 0 or 1 per line (int8 array of length n)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the labels file {path}: {exc}; give a text file with one 0/1 per line")
    labels = np.empty(len(lines), dtype=np.int8)
    for number, line in enumerate(lines, start=1):
        value = line.strip()
        if value not in ("0", "1"):
            raise UserError(f"{path} line {number}: expected 0 or 1, found {value!r}; "
                            "the labels file has one 0 (normal) or 1 (anomalous) per line")
        labels[number - 1] = int(value)
    if len(lines) != n:
        raise UserError(f"{path} has {len(lines)} label lines but the signal has {n} samples; "
                        "give one 0/1 line per sample")
    return labels

"""Anomaly score = causal smoothed energy of the prediction error, in units of its level on normal data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgewave.errors import UserError


def _finite_float64(err: np.ndarray, what: str) -> np.ndarray:
    err = np.asarray(err, dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(err))
    if bad.size:
        raise UserError(f"the {what} has {bad.size} NaN/Inf samples (first at index {bad[0]}); "
                        "clean the input signal before scoring it")
    return err


def _check_window(window: int) -> int:
    if int(window) != window or window < 1:
        raise UserError(f"the smoothing window must be a whole number of samples >= 1, got {window}")
    return int(window)


def causal_moving_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of values[t-window+1 .. t] (fewer at the start), float64, O(n).

    A running or cumulative sum carries the rounding error of everything before the window (a
    loud stretch followed by near-silence leaves the quiet part dominated by it). Instead, cut
    the signal into blocks of `window` samples: each window is a suffix of one block plus a
    prefix of the next, and both partial sums hold only samples inside the window, so the result
    is as accurate as summing the window directly, at any signal length.
    """
    window = _check_window(window)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    n = values.size
    blocks = np.concatenate((values, np.zeros(-n % window))).reshape(-1, window)
    prefix = np.cumsum(blocks, axis=1).reshape(-1)[:n]                   # block start .. t
    suffix = np.cumsum(blocks[:, ::-1], axis=1)[:, ::-1].reshape(-1)[:n]  # t .. block end
    t = np.arange(n)
    first = t - window + 1
    block_start = t - t % window
    spills = (first >= 0) & (first < block_start)   # window reaches back into the previous block
    total = prefix + np.where(spills, suffix[np.maximum(first, 0)], 0.0)
    return total / np.minimum(t + 1, window)


def smoothed_energy(err: np.ndarray, window: int) -> np.ndarray:
    """Causal mean of err**2 over the last `window` samples (fewer at the start), float64, O(n)."""
    return causal_moving_mean(_finite_float64(err, "error signal") ** 2, window)


# Energy below this fraction of the normal level counts as this fraction: the score of a signal
# that has become perfectly predictable (a flatline) is large but finite.
ENERGY_FLOOR = 1e-6


@dataclass(frozen=True)
class Calibration:
    """How to turn an error signal into a normalised score and an alarm (score > threshold)."""

    level: float             # median smoothed energy on normal data
    threshold: float         # the (1 - false_alarm_rate) quantile of the score on normal data
    false_alarm_rate: float  # target fraction of normal samples above the threshold
    window: int              # smoothing window, samples
    source: str              # where the normal calibration data came from

    def energy_bounds(self) -> tuple[float, float]:
        """The alarm as bounds on the smoothed energy: below the first or above the second
        (what a device compares its integer window sum with, times the window)."""
        return self.level * np.exp(-self.threshold), self.level * np.exp(self.threshold)


def _check_rate(false_alarm_rate: float) -> float:
    if not 0.0 < false_alarm_rate <= 0.5:
        raise UserError(f"the false-alarm rate must be in (0, 0.5], got {false_alarm_rate}; "
                        "give a fraction of normal samples, e.g. 0.001")
    return float(false_alarm_rate)


def normalised(energy: np.ndarray, level: float) -> np.ndarray:
    """|ln(energy / level)|: how far the error energy is from its normal level, either way.

    Two-sided on purpose: a signal can stop looking like itself by becoming unpredictable
    (noise, a gain jump, a distorted shape) or by becoming too predictable (a stuck sensor, a
    flatline, a lead off), and the second is often the alarm that matters most."""
    ratio = np.maximum(np.asarray(energy, np.float64) / level, ENERGY_FLOOR)
    return np.abs(np.log(ratio))


def calibrate_energy(energy: np.ndarray, window: int, false_alarm_rate: float, source: str) -> Calibration:
    """Level and threshold from the smoothed error energy on normal data (no anomalies in it)."""
    window = _check_window(window)
    false_alarm_rate = _check_rate(false_alarm_rate)
    energy = np.asarray(energy, np.float64).reshape(-1)
    if energy.size < window:
        raise UserError(f"the calibration data ({source}) has {energy.size} samples, fewer than the "
                        f"smoothing window of {window}; use more normal data or a shorter window")
    # The first window-1 values average fewer samples, so they are noisier than what the detector
    # sees in steady state; leaving them out keeps the threshold from being set by the warm-up.
    energy = energy[window - 1:]
    # Median, not mean: normal calibration data often holds a few artefacts (clipping, dropouts)
    # whose squared error would dominate a mean.
    level = float(np.median(energy))
    if level <= 0.0:
        raise UserError(f"the prediction error is zero on most of the calibration data ({source}); "
                        "calibrate on a longer, non-constant stretch of normal signal")
    threshold = float(np.quantile(normalised(energy, level), 1.0 - false_alarm_rate))
    return Calibration(level=level, threshold=threshold, false_alarm_rate=false_alarm_rate,
                       window=window, source=str(source))


def calibrate(normal_err: np.ndarray, window: int, false_alarm_rate: float, source: str) -> Calibration:
    """`calibrate_energy` of an error signal on normal data."""
    window = _check_window(window)
    return calibrate_energy(smoothed_energy(_finite_float64(normal_err, "calibration error signal"), window),
                            window, false_alarm_rate, source)


def score(err: np.ndarray, cal: Calibration) -> np.ndarray:
    """Normalised anomaly score of an error signal (0 = exactly the normal level)."""
    return normalised(smoothed_energy(err, cal.window), cal.level)

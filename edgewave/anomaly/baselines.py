"""Classic error signals to compare the model against, scored with the same smoothing and calibration."""

from __future__ import annotations

import numpy as np

from edgewave import lpc
from edgewave.anomaly.score import causal_moving_mean
from edgewave.errors import UserError

# A constant stretch has zero moving std; the z-score then divides by this fraction of the
# signal's overall spread instead, so it stays finite without inflating ordinary deviations.
_STD_FLOOR = 1e-3


def fit_lpc(normal_x: np.ndarray, order: int = 32) -> np.ndarray:
    """Least-squares linear predictor of x[t] from the `order` samples before it, fitted on normal data."""
    normal_x = np.asarray(normal_x, dtype=np.float64).reshape(-1)
    if normal_x.size < 2 * order:
        # lpc.fit silently skips blocks that are too short and would return a predictor of zeros.
        raise UserError(f"fitting an order-{order} linear predictor needs at least {2 * order} normal "
                        f"samples, got {normal_x.size}; use more data or a lower order")
    return lpc.fit([normal_x], order)


def lpc_residual(x: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """One-step prediction error x[t] - prediction, same length as x.

    The first `order` samples have no full history, so their error is set to 0: skip them
    (skip=order) when calibrating or evaluating, as for the model's receptive field.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    order = len(coeffs)
    err = np.zeros_like(x)
    if x.size > order:
        err[order:] = x[order:] - lpc.predict(x, coeffs)
    return err


def moving_zscore(x: np.ndarray, window: int) -> np.ndarray:
    """|x[t] - mean| / std of the `window` samples before t (fewer at the start; 0 at t = 0).

    The statistics exclude x[t] itself, so a sudden deviation is not damped by its own
    contribution to the std: like a predictor, it compares each sample with its recent past.
    """
    if int(window) != window or window < 2:
        raise UserError(f"the z-score window must be a whole number of samples >= 2, got {window}")
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size < 2:
        return np.zeros_like(x)
    # Centring first keeps the mean of squares small, so a large DC offset does not cancel digits.
    centred = x - np.median(x)
    past_mean = causal_moving_mean(centred, int(window))[:-1]      # over samples up to t-1
    past_sq = causal_moving_mean(centred ** 2, int(window))[:-1]
    past_std = np.sqrt(np.maximum(past_sq - past_mean ** 2, 0.0))
    scale = float(np.std(centred)) or float(np.max(np.abs(x))) or 1.0
    z = np.abs(centred[1:] - past_mean) / np.maximum(past_std, _STD_FLOOR * scale)
    return np.concatenate(([0.0], z))

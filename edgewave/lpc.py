"""The classic alternative: a least-squares linear predictor fitted on the training split."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _lagged(x: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows [x[t-1], ..., x[t-order]] and targets x[t] for every t >= order."""
    win = sliding_window_view(np.asarray(x, np.float64), order + 1)
    return win[:, :-1][:, ::-1], win[:, -1]


def fit(blocks: Iterable[np.ndarray], order: int = 32) -> np.ndarray:
    """Covariance-method LPC: accumulate normal equations block by block (no whole-signal copy)."""
    gram = np.zeros((order, order))
    cross = np.zeros(order)
    for block in blocks:
        if len(block) <= order:
            continue
        rows, target = _lagged(block, order)
        gram += rows.T @ rows
        cross += rows.T @ target
    gram += np.eye(order) * 1e-9 * max(np.trace(gram) / order, 1e-12)
    return np.linalg.solve(gram, cross)


def predict(x: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Prediction of x[t] from the `order` samples before it, for t = order..len(x)-1."""
    rows, _ = _lagged(x, len(coeffs))
    return rows @ coeffs

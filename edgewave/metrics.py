"""Prediction quality numbers shared by train, convert and simulate."""

from __future__ import annotations

import numpy as np


def prediction_gain_db(target: np.ndarray, prediction: np.ndarray) -> float:
    """10*log10(var(x) / var(x - x_hat)): how much smaller the residual is than the signal."""
    target = np.asarray(target, np.float64)
    err = target - np.asarray(prediction, np.float64)
    ve = float(np.var(err))
    if ve == 0.0:
        return float("inf")
    return float(10.0 * np.log10(np.var(target) / ve))


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """SNR of `test` against `reference` (e.g. integer prediction vs the float model's)."""
    reference = np.asarray(reference, np.float64)
    noise = float(np.mean((reference - np.asarray(test, np.float64)) ** 2))
    if noise == 0.0:
        return float("inf")
    return float(10.0 * np.log10(np.mean(reference ** 2) / noise))


def mulaw_encode(x: np.ndarray, bits: int) -> np.ndarray:
    """x in [-1, 1] -> class index 0..2**bits-1 (ITU G.711 style companding)."""
    mu = 2 ** bits - 1
    x = np.clip(np.asarray(x, np.float64), -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.clip(np.floor((y + 1.0) / 2.0 * mu + 0.5), 0, mu).astype(np.int32)


def mulaw_decode(index: np.ndarray, bits: int) -> np.ndarray:
    mu = 2 ** bits - 1
    y = 2.0 * np.asarray(index, np.float64) / mu - 1.0
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)

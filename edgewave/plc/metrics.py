"""Scores for concealed speech: PESQ (ITU-T P.862), STOI, and the SNR over the lost samples.

PESQ and STOI come from the optional `pesq` and `pystoi` packages, imported only when
asked for, so the rest of edgewave works without them.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserError

PESQ_MODES = {8000: "nb", 16000: "wb"}  # P.862 narrow band, P.862.2 wide band


def _pair(ref: np.ndarray, deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, deg = np.asarray(ref, np.float64), np.asarray(deg, np.float64)
    if ref.ndim != 1 or ref.shape != deg.shape:
        raise UserError(f"reference {ref.shape} and degraded {deg.shape} signals differ in shape; "
                        "pass two 1-D signals of the same length")
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(deg))):
        raise UserError("a signal to score has NaN or infinite samples; score only finite audio")
    return ref, deg


def _import(module: str, package: str):
    try:
        return __import__(module)
    except ImportError:
        raise UserError(f"this score needs the `{package}` package; install it with "
                        f"`pip install {package}`") from None


def pesq_score(ref: np.ndarray, deg: np.ndarray, rate: int) -> float:
    """PESQ MOS-LQO of deg against ref: narrow band at 8 kHz, wide band at 16 kHz."""
    mode = PESQ_MODES.get(int(rate))
    if mode is None:
        raise UserError(f"PESQ needs 8 or 16 kHz audio, not {rate} Hz; resample to 8000 or 16000")
    ref, deg = _pair(ref, deg)
    if not np.any(ref):
        raise UserError("PESQ of a silent reference is undefined; score a signal with speech in it")
    pesq = _import("pesq", "pesq")
    try:
        return float(pesq.pesq(int(rate), ref, deg, mode))
    except pesq.PesqError as e:  # e.g. NoUtterancesError, BufferTooShortError
        reason = _message(e)
    except ValueError:
        # pesq 0.0.4 turns a NaN score (nothing it can level-align, e.g. a silent
        # degraded signal) into this instead of an error of its own
        reason = "no speech level it could align"
    raise UserError(f"PESQ could not score this audio ({reason}); give it at least a few "
                    "seconds with speech in both signals")


def _message(error: Exception) -> str:
    text = error.args[0] if error.args else ""
    if isinstance(text, bytes):  # the package passes its C message through as bytes
        text = text.decode(errors="replace")
    return " ".join(str(text).split()) or type(error).__name__


def stoi_score(ref: np.ndarray, deg: np.ndarray, rate: int) -> float:
    """Short-time objective intelligibility of deg against ref, 0..1."""
    ref, deg = _pair(ref, deg)
    pystoi = _import("pystoi", "pystoi")
    return float(pystoi.stoi(ref, deg, int(rate), extended=False))


def snr_lost_db(ref: np.ndarray, deg: np.ndarray, sample_mask: np.ndarray) -> float:
    """SNR (dB) of deg against ref over the masked samples only.

    +inf when deg equals ref there, nan when the mask selects nothing.
    """
    ref, deg = np.asarray(ref, np.float64), np.asarray(deg, np.float64)
    mask = np.asarray(sample_mask, bool)
    if not (ref.shape == deg.shape == mask.shape and ref.ndim == 1):
        raise UserError(f"reference {ref.shape}, degraded {deg.shape} and mask {mask.shape} differ in "
                        "shape; pass three 1-D arrays of the same length")
    if not mask.any():
        return float("nan")
    signal = float(np.sum(ref[mask] ** 2))
    noise = float(np.sum((ref[mask] - deg[mask]) ** 2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return float(10.0 * np.log10(signal / noise))

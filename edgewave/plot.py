"""The picture `simulate --plot` draws: signal, predictions, error, error histogram."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import UserError


def plot(path: str, x: np.ndarray, preds: dict[str, np.ndarray], rf: int, sample_rate: int | None,
         scale: float = 1.0, offset: float = 0.0, span: int = 2000) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install 'edgewave[plot]' (or pip install matplotlib)")
    rate = sample_rate or 1
    unit = "s" if sample_rate else "samples"
    signal = x * scale + offset
    start = max(rf, int(np.argmax(np.abs(signal) > 0.3 * np.abs(signal).max())) - span // 4)
    start = min(start, max(rf, len(x) - span))
    sl = slice(start, min(len(x), start + span))
    t = np.arange(len(x)) / rate
    fig, axes = plt.subplots(3, 1, figsize=(11, 9), constrained_layout=True)
    ax = axes[0]
    ax.plot(t[sl], signal[sl], color="black", lw=1.2, label="signal")
    for name, p in preds.items():
        shifted = np.concatenate([[np.nan], p[:-1]]) * scale + offset  # prediction made at t-1 for t
        ax.plot(t[sl], shifted[sl], lw=0.9, label=f"prediction ({name})")
    ax.set(title="Signal and next-sample predictions", xlabel=f"time ({unit})", ylabel="amplitude (signal units)")
    ax.legend(loc="upper right")
    ax = axes[1]
    for name, p in preds.items():
        err = (x[1:] - p[:-1]) * scale
        ax.plot(t[1:][rf:], err[rf:], lw=0.6, label=f"error ({name})")
    ax.set(title="Prediction error over the whole signal", xlabel=f"time ({unit})", ylabel="error (signal units)")
    ax.legend(loc="upper right")
    ax = axes[2]
    for name, p in preds.items():
        err = (x[1:] - p[:-1])[rf:] * scale
        ax.hist(err, bins=120, histtype="step", lw=1.2, label=f"{name} (rms {np.sqrt(np.mean(err ** 2)):.3g})")
    ax.set(title="Error histogram", xlabel="error (signal units)", ylabel="count", yscale="log")
    ax.legend(loc="upper right")
    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)

"""Random quantized cases shared by the kernel tests: tests/test_integer_kernels.py (the numpy kernels
against TFLM) and tests/test_c_kernels.py (the C runtime against the numpy kernels) draw their inputs,
quantization and fully-connected layers here, so both pin the kernels on the same kind of case."""

from __future__ import annotations

import numpy as np

from edgewave.integer import QuantParams


def qrange(dtype):
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def random_input(rng, shape, dtype, extremes: bool = False) -> np.ndarray:
    """Uniform codes; with ``extremes``, a quarter of them set to the range's ends in 30 % of the cases
    (the saturating paths of the C kernels)."""
    lo, hi = qrange(dtype)
    x = rng.integers(lo, hi + 1, size=shape).astype(dtype)
    if extremes and x.size and rng.random() < 0.3:
        x.flat[rng.integers(0, x.size, max(1, x.size // 4))] = rng.choice([lo, hi], max(1, x.size // 4))
    return x


def random_act_quant(rng, dtype) -> QuantParams:
    """int8: any zero point; int16: symmetric (the 16x8 scheme; TFLM's int16 MUL/TANH/... need it)."""
    if dtype == "int8":
        return QuantParams(10 ** rng.uniform(-3, 0), int(rng.integers(-128, 128)))
    return QuantParams(10 ** rng.uniform(-5, -2), 0)


def dequantize(x, q: QuantParams):
    return q.scale * (x.astype(np.float64) - q.zero_point)


def calibrated_quant(rng, real: np.ndarray, dtype) -> QuantParams:
    """Output quantization fitted to the real result, sometimes too tight (to hit clamping)."""
    lo, hi = qrange(dtype)
    top, bottom = float(real.max(initial=0.0)), float(real.min(initial=0.0))
    span = max(top - bottom, 1e-6) * rng.uniform(0.6, 1.4)
    if dtype == "int16":
        return QuantParams(max(abs(top), abs(bottom), 1e-6) * rng.uniform(0.6, 1.4) / hi, 0)
    scale = span / (hi - lo)
    return QuantParams(scale, int(np.clip(round(lo - bottom * rng.uniform(0.6, 1.4) / scale), lo, hi)))


# -- FULLY_CONNECTED -------------------------------------------------------------------------


def random_fc_weights(rng, n_out: int, depth: int, per_channel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Weight scales (one per output channel, or one) and int8 weights (symmetric, -127..127)."""
    w_scales = (10 ** rng.uniform(-3.5, -1.5, n_out if per_channel else 1)).astype(np.float32)
    return w_scales, rng.integers(-127, 128, (n_out, depth)).astype(np.int8)


def bias_scales(x_q: QuantParams, w_scales: np.ndarray) -> np.ndarray:
    """TFLite's bias scale: input scale times weight scale, in float32."""
    return (np.float32(x_q.scale) * w_scales).astype(np.float32)


def realistic_bias(rng, x_q: QuantParams, w_scales: np.ndarray, n_out: int, depth: int, bias_dtype) -> np.ndarray:
    """A bias of the size training gives (a fraction of the products' spread), in the bias scale."""
    real = rng.normal(0, 0.5, n_out) * np.sqrt(depth) * x_q.scale * float(np.max(w_scales)) * 64
    scales = np.broadcast_to(bias_scales(x_q, w_scales), n_out)
    return np.clip(np.round(real / scales), -(2**31), 2**31 - 1).astype(bias_dtype)


def fc_real(x: np.ndarray, x_q: QuantParams, w: np.ndarray, w_scales: np.ndarray) -> np.ndarray:
    """The real-valued product of the dequantized input and weights (no bias): what the output
    quantization is calibrated on."""
    return dequantize(x, x_q) @ (w * np.broadcast_to(w_scales, w.shape[0]).reshape(-1, 1)).T

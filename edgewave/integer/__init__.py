"""Bit-exact numpy versions of TensorFlow Lite Micro's integer kernels (int8, int16x8)."""

from edgewave.integer.fixedpoint import (
    multiply_by_quantized_multiplier,
    multiply_by_quantized_multiplier_int64,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from edgewave.integer.kernels import (
    INT16_UNIT_OUTPUT,
    LOGISTIC_INT8_OUTPUT,
    TANH_INT8_OUTPUT,
    QuantParams,
    activation_range,
    add,
    average_pool_2d,
    concatenation,
    fully_connected,
    logistic,
    max_pool_2d,
    mul,
    pad,
    tanh,
)

__all__ = [
    "INT16_UNIT_OUTPUT",
    "LOGISTIC_INT8_OUTPUT",
    "TANH_INT8_OUTPUT",
    "QuantParams",
    "activation_range",
    "add",
    "average_pool_2d",
    "concatenation",
    "fully_connected",
    "logistic",
    "max_pool_2d",
    "mul",
    "multiply_by_quantized_multiplier",
    "multiply_by_quantized_multiplier_int64",
    "pad",
    "quantize_multiplier",
    "rounding_divide_by_pot",
    "saturating_rounding_doubling_high_mul",
    "tanh",
]

"""TFLite flatbuffers written and read directly (no converter in the loop)."""

from edgewave.tflite.builder import (
    ModelBuilder,
    ModelSummary,
    OpInfo,
    Tensor,
    TensorInfo,
    check_model_bytes,
    read_model,
)

__all__ = [
    "ModelBuilder",
    "ModelSummary",
    "OpInfo",
    "Tensor",
    "TensorInfo",
    "check_model_bytes",
    "read_model",
]

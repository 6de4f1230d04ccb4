"""What a TensorFlow Lite Micro user needs: the model as a C array, its ops, its arena size."""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile

from ..runners import tflm_interpreter
from ..tflite import read_model

# TFLite builtin -> MicroMutableOpResolver method
RESOLVER_METHODS = {
    "FULLY_CONNECTED": "AddFullyConnected", "CONV_2D": "AddConv2D", "CONCATENATION": "AddConcatenation", "ADD": "AddAdd",
    "MUL": "AddMul", "TANH": "AddTanh", "LOGISTIC": "AddLogistic", "RELU": "AddRelu",
    "QUANTIZE": "AddQuantize", "RESHAPE": "AddReshape", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "MAX_POOL_2D": "AddMaxPool2D", "PAD": "AddPad", "STRIDED_SLICE": "AddStridedSlice",
}
ARENA_MARGIN = 1.25  # the Python TFLM runs on a 64-bit host; 32-bit MCUs need less, so this is generous


def ops(model: bytes) -> list[str]:
    return sorted({o.name for o in read_model(model).ops})


def measured_arena_bytes(model: bytes) -> int:
    """Arena bytes TFLM actually allocates for this model (parsed from print_allocations)."""
    ip = tflm_interpreter(model)
    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile(mode="w+") as capture:
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd in saved:
                os.dup2(capture.fileno(), fd)
            ip.print_allocations()
            libc.fflush(None)  # the report is printed through C stdio
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
        capture.seek(0)
        text = capture.read()
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    if not m:
        raise RuntimeError("TFLM did not report its arena size")
    return int(m.group(1))


def c_array(blob: bytes, per_line: int = 16) -> str:
    rows = (", ".join(f"0x{b:02x}" for b in blob[i:i + per_line]) for i in range(0, len(blob), per_line))
    return ",\n  ".join(rows)
